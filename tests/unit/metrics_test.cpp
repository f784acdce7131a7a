// The metrics registry, its Prometheus text, and the metrics a running cluster records.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <regex>
#include <sstream>

#include "core/metrics.h"
#include "harness.h"
#include "test_delegate.h"

namespace memberlist::test {
namespace {

using namespace core;

// A tiny parser of the Prometheus text format: every line is a comment (`# TYPE name kind`
// or any other `#` line) or `name{label="value",...} number`. Returns the samples as
// "name{labels}" -> value; fails the test on any other line.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  static const std::regex type_line(R"(# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|summary|histogram|untyped))");
  static const std::regex sample_line(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? ([-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf)|NaN))");
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE", 0) == 0) {
      EXPECT_TRUE(std::regex_match(line, type_line)) << line;
      continue;
    }
    if (!line.empty() && line[0] == '#') continue;
    std::smatch m;
    if (!std::regex_match(line, m, sample_line)) {
      ADD_FAILURE() << "not a Prometheus sample line: '" << line << "'";
      continue;
    }
    const std::string key = line.substr(0, line.rfind(' '));
    out[key] = std::stod(line.substr(line.rfind(' ') + 1));
  }
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  return out;
}

TEST(Metrics, CountersGaugesTimers) {
  Metrics m;
  m.incr("a.count");
  m.incr("a.count", 2);
  m.incr("a.count", 1, {{"kind", "x"}});
  m.set_gauge("b.level", 5);
  m.set_gauge("b.level", 3);
  m.observe_ms("c.time", 4);
  m.observe_ms("c.time", 1);
  m.observe_ms("c.time", 10);
  EXPECT_EQ(m.counter("a.count"), 3);
  EXPECT_EQ(m.counter("a.count", {{"kind", "x"}}), 1);
  EXPECT_EQ(m.gauge("b.level"), 3);
  TimerStats t = m.timer("c.time");
  EXPECT_EQ(t.count, 3u);
  EXPECT_EQ(t.sum, 15);
  EXPECT_EQ(t.min, 1);
  EXPECT_EQ(t.max, 10);
  EXPECT_EQ(m.counter("never"), 0);
  // One kind per name: a gauge sample for a counter is ignored.
  m.set_gauge("a.count", 100);
  EXPECT_EQ(m.counter("a.count"), 3);
  EXPECT_EQ(m.gauge("a.count"), 0);
  auto snap = m.snapshot();
  ASSERT_EQ(snap.size(), 4u);
  EXPECT_EQ(snap[0].name, "a.count");
  EXPECT_EQ(snap[0].kind, MetricKind::Counter);
  EXPECT_EQ(snap[3].name, "c.time");
  EXPECT_EQ(snap[3].timer.count, 3u);
}

TEST(Metrics, ListenerSeesEverySampleWithCommonLabels) {
  Metrics m;
  m.set_common_labels({{"cluster", "prod"}});
  std::vector<MetricSample> seen;
  m.set_listener([&](const MetricSample& s) { seen.push_back(s); });
  m.incr("x", 2);
  m.set_gauge("y", 7, {{"node_state", "alive"}});
  m.observe_ms("z", 1.5);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].kind, MetricKind::Counter);
  EXPECT_EQ(seen[0].value, 2);
  EXPECT_EQ(seen[0].labels, (MetricLabels{{"cluster", "prod"}}));
  EXPECT_EQ(seen[1].labels, (MetricLabels{{"cluster", "prod"}, {"node_state", "alive"}}));
  EXPECT_EQ(seen[2].kind, MetricKind::Timer);
  EXPECT_EQ(seen[2].value, 1.5);
  // Lookups take the series' own labels; snapshots show the common ones too.
  EXPECT_EQ(m.gauge("y", {{"node_state", "alive"}}), 7);
  EXPECT_EQ(m.snapshot()[0].labels, (MetricLabels{{"cluster", "prod"}}));
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.incr("memberlist.msg.alive", 3);
  m.set_gauge("memberlist.node.instances", 4, {{"node_state", "alive"}});
  m.set_gauge("memberlist.node.instances", 1, {{"node_state", "dead"}});
  m.observe_ms("memberlist.probeNode", 2);
  m.observe_ms("memberlist.probeNode", 6);
  m.observe_ms("memberlist.gossip", 0);
  m.incr("weird-name.9", 1, {{"why", "quote \" back \\ newline \n end"}, {"0bad.label", "v"}});
  m.incr("9starts.with.digit");
  const std::string text = m.prometheus();
  auto samples = parse_prometheus(text);
  EXPECT_EQ(samples.at("memberlist_msg_alive"), 3);
  EXPECT_EQ(samples.at("memberlist_node_instances{node_state=\"alive\"}"), 4);
  EXPECT_EQ(samples.at("memberlist_node_instances{node_state=\"dead\"}"), 1);
  EXPECT_EQ(samples.at("memberlist_probeNode_count"), 2);
  EXPECT_EQ(samples.at("memberlist_probeNode_sum"), 8);
  EXPECT_EQ(samples.at("memberlist_probeNode{quantile=\"0\"}"), 2);
  EXPECT_EQ(samples.at("memberlist_probeNode{quantile=\"1\"}"), 6);
  EXPECT_EQ(samples.at("memberlist_gossip_count"), 1);
  EXPECT_EQ(samples.at("weird_name_9{why=\"quote \\\" back \\\\ newline \\n end\",_0bad_label=\"v\"}"), 1);
  EXPECT_EQ(samples.at("_9starts_with_digit"), 1);
  EXPECT_NE(text.find("# TYPE memberlist_msg_alive counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE memberlist_node_instances gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE memberlist_probeNode summary\n"), std::string::npos);
  // One TYPE line per family, before its samples.
  EXPECT_EQ(text.find("# TYPE memberlist_node_instances"), text.rfind("# TYPE memberlist_node_instances"));
  EXPECT_LT(text.find("# TYPE memberlist_node_instances"), text.find("memberlist_node_instances{"));
  EXPECT_EQ(Metrics{}.prometheus(), "");
}

TEST(Metrics, PrometheusEdgeValues) {
  Metrics m;
  m.set_gauge("big", 1e300);
  m.set_gauge("neg", -2.5);
  m.set_gauge("inf", std::numeric_limits<double>::infinity());
  m.set_gauge("nan", std::numeric_limits<double>::quiet_NaN());
  auto samples = parse_prometheus(m.prometheus());
  EXPECT_EQ(samples.at("big"), 1e300);
  EXPECT_EQ(samples.at("neg"), -2.5);
  EXPECT_TRUE(std::isinf(samples.at("inf")));
  EXPECT_TRUE(std::isnan(samples.at("nan")));
}

std::string nm(int i) { return "n" + std::to_string(i); }

TEST(CoreMetrics, MoveAsTheClusterWorks) {
  Cluster c;
  for (int i = 1; i <= 4; ++i) {
    Config cfg = test_config(nm(i), i);
    cfg.gossip_to_the_dead_time = 120s;  // keep the dead node around to be counted
    c.add(cfg);
  }
  size_t samples = 0;
  c.core("n1").metrics().set_listener([&](const MetricSample&) { samples++; });
  for (int i = 2; i <= 4; ++i) c.join(nm(i), "n1");
  c.run_for(31s);  // past one queue check (30 s) and two periodic push/pulls (15 s)
  const Metrics& m = c.core("n1").metrics();
  EXPECT_GE(m.counter("memberlist.msg.alive"), 4);  // self + three others at least
  EXPECT_GT(m.counter("memberlist.udp.sent"), 0);     // added by the harness, as a runtime does
  EXPECT_GT(m.counter("memberlist.udp.received"), 0);
  TimerStats probe = m.timer("memberlist.probeNode");
  EXPECT_GT(probe.count, 20u);
  EXPECT_EQ(probe.min, 2);  // 1 ms each way in virtual time
  // Gossip rounds with something to send (an idle node skips its rounds).
  EXPECT_GE(m.timer("memberlist.gossip").count, 1u);
  EXPECT_GE(m.timer("memberlist.pushPullNode").count + c.core("n2").metrics().timer("memberlist.pushPullNode").count, 2u);
  EXPECT_EQ(m.gauge("memberlist.health.score"), 0);
  EXPECT_EQ(m.gauge("memberlist.node.instances", {{"node_state", "alive"}}), 4);
  EXPECT_EQ(m.gauge("memberlist.node.instances", {{"node_state", "dead"}}), 0);
  EXPECT_EQ(m.gauge("memberlist.queue.broadcasts"), 0);
  EXPECT_GT(samples, 100u);

  // Garbage is counted by reason.
  c.core("n1").handle_packet(addr_of(9), Bytes{0xEE, 1, 2}, c.now());
  EXPECT_EQ(m.counter("memberlist.bad_messages", {{"reason", "decode"}}), 1);

  // A failure moves suspicion, death and degraded counters.
  c.set_down("n4", true);
  c.run_for(40s);
  double suspect = 0, dead = 0;
  for (int i = 1; i <= 3; ++i) {
    suspect += c.core(nm(i)).metrics().counter("memberlist.msg.suspect");
    dead += c.core(nm(i)).metrics().counter("memberlist.msg.dead");
  }
  EXPECT_GE(suspect, 3);
  EXPECT_GE(dead, 3);
  EXPECT_EQ(m.gauge("memberlist.node.instances", {{"node_state", "dead"}}), 1);

  auto parsed = parse_prometheus(m.prometheus());
  EXPECT_GT(parsed.at("memberlist_msg_alive"), 0);
  EXPECT_GT(parsed.at("memberlist_probeNode_count"), 0);
  EXPECT_EQ(parsed.count("memberlist_bad_messages{reason=\"decode\"}"), 1u);
}

TEST(CoreMetrics, DegradedProbesAndHealthGauge) {
  Cluster c;
  for (int i = 1; i <= 3; ++i) {
    Config cfg = test_config(nm(i), i);
    cfg.disable_tcp_pings = true;
    c.add(cfg);
  }
  for (int i = 2; i <= 3; ++i) c.join(nm(i), "n1");
  c.run_for(3s);
  // n1 hears nothing: its probes fail without nacks and its health degrades.
  c.drop_packet = [](const Address&, const Address& to, const Bytes&) { return to == addr_of(1); };
  EXPECT_TRUE(c.run_until_pred([&] { return c.core("n1").metrics().gauge("memberlist.health.score") >= 2; }, 30s));
  c.run_for(5s);
  EXPECT_GT(c.core("n1").metrics().counter("memberlist.degraded.probe"), 0);
  EXPECT_EQ(c.core("n1").metrics().gauge("memberlist.health.score"), c.core("n1").health_score());
}

}  // namespace
}  // namespace memberlist::test
