// The simulator's harness on its own (no protocol core): event ordering, network model
// statistics, partitions, crashes, slowness, determinism of the random decisions.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sim/network.h"

namespace memberlist::sim {
namespace {

using namespace std::chrono_literals;

TEST(EventQueue, RunsByTimeThenInsertionOrder) {
  EventQueue q;
  std::vector<int> order;
  q.schedule(Instant{20ms}, [&] { order.push_back(3); });
  q.schedule(Instant{10ms}, [&] { order.push_back(1); });
  q.schedule(Instant{10ms}, [&] { order.push_back(2); });  // same time: after the first
  q.schedule(Instant{30ms}, [&] { order.push_back(4); });
  q.run_until(Instant{25ms});
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(q.now(), Instant{25ms});
  // An action scheduled in the past runs now, never moving the clock back.
  q.schedule(Instant{5ms}, [&] { order.push_back(0); });
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.now(), Instant{25ms});
  EXPECT_EQ(order.back(), 0);
  q.run_until(Instant{100ms});
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 0, 4}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.executed(), 5u);
}

TEST(EventQueue, ActionsMayScheduleMore) {
  EventQueue q;
  int fired = 0;
  std::function<void()> tick = [&] {
    if (++fired < 10) q.schedule(q.now() + 1ms, tick);
  };
  q.schedule(Instant{0}, tick);
  q.run_until(Instant{1s});
  EXPECT_EQ(fired, 10);
  EXPECT_EQ(q.executed(), 10u);
}

// Random traffic among `nodes` nodes through the model, every delivery folded into a hash.
uint64_t traffic_trace(uint64_t seed, int nodes, int messages) {
  EventQueue q;
  NetworkModel net(seed);
  net.set_default_link(LinkModel{0.1, 2ms, 3ms});
  net.set_slow(3, 50ms);
  TraceHash h;
  for (int i = 0; i < messages; ++i) {
    NodeId from = NodeId(net.rng()() % nodes), to = NodeId(net.rng()() % nodes);
    q.schedule(Instant{std::chrono::microseconds(i * 100)}, [&, from, to, i] {
      Duration d{};
      if (net.send_datagram(from, to, d) == Fate::Delivered) {
        q.schedule(q.now() + d, [&, from, to, i] {
          h.add(uint64_t(q.now().count()));
          h.add((uint64_t(from) << 32) | to);
          h.add(uint64_t(i));
        });
      }
    });
  }
  q.run_until(Instant{1h});
  return h.value();
}

TEST(NetworkModel, SameSeedSameTraceOtherSeedOtherTrace) {
  uint64_t a = traffic_trace(42, 20, 5000);
  EXPECT_EQ(a, traffic_trace(42, 20, 5000));
  EXPECT_NE(a, traffic_trace(43, 20, 5000));
}

TEST(NetworkModel, UniformLossRateMatchesConfig) {
  NetworkModel net(7);
  net.set_default_link(LinkModel{0.10, 1ms, 0ms});
  const int n = 200'000;
  int lost = 0;
  for (int i = 0; i < n; ++i) {
    Duration d{};
    if (net.send_datagram(NodeId(i % 50), NodeId((i * 7 + 1) % 50), d) == Fate::Lost) ++lost;
  }
  double rate = double(lost) / n;
  // Binomial standard deviation is sqrt(0.1*0.9/n) ~ 0.067 %; allow 6 of them.
  EXPECT_NEAR(rate, 0.10, 0.004) << "lost " << lost << " of " << n;
}

TEST(NetworkModel, PerLinkLossOverridesDefault) {
  NetworkModel net(9);
  net.set_link(0, 1, LinkModel{0.5, 1ms, 0ms});
  int lost01 = 0, lost10 = 0;
  for (int i = 0; i < 20'000; ++i) {
    Duration d{};
    if (net.send_datagram(0, 1, d) == Fate::Lost) ++lost01;
    if (net.send_datagram(1, 0, d) == Fate::Lost) ++lost10;
  }
  EXPECT_NEAR(lost01 / 20000.0, 0.5, 0.03);
  EXPECT_EQ(lost10, 0);  // the reverse direction keeps the lossless default
  net.clear_link(0, 1);
  Duration d{};
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(net.send_datagram(0, 1, d), Fate::Delivered);
}

TEST(NetworkModel, LatencyJitterAndSlowness) {
  NetworkModel net(11);
  net.set_default_link(LinkModel{0.0, 5ms, 2ms});
  net.set_slow(2, 300ms);
  Duration lo = Duration::max(), hi = Duration::min();
  double sum = 0;
  const int n = 10'000;
  for (int i = 0; i < n; ++i) {
    Duration d{};
    ASSERT_EQ(net.send_datagram(0, 1, d), Fate::Delivered);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    sum += double(d.count());
  }
  EXPECT_GE(lo, Duration{5ms});
  EXPECT_LE(hi, Duration{7ms});
  EXPECT_NEAR(sum / n, 6000.0, 50.0);  // uniform jitter: mean latency + jitter/2
  Duration d{};
  ASSERT_EQ(net.send_stream(0, 2, d), Fate::Delivered);
  EXPECT_GE(d, Duration{305ms});  // the slow receiver handles it 300 ms late
  ASSERT_EQ(net.send_stream(2, 0, d), Fate::Delivered);
  EXPECT_LE(d, Duration{7ms});  // its own sends are not delayed
}

TEST(NetworkModel, PartitionsCrashesAndHeal) {
  NetworkModel net(13);
  net.partition({{0, 1}, {2}});
  EXPECT_TRUE(net.reachable(0, 1));
  EXPECT_FALSE(net.reachable(0, 2));
  EXPECT_FALSE(net.reachable(1, 3));  // 3 is in the unlisted rest
  EXPECT_TRUE(net.reachable(3, 4));
  Duration d{};
  EXPECT_EQ(net.send_datagram(0, 2, d), Fate::Partitioned);
  EXPECT_EQ(net.send_stream(2, 0, d), Fate::Partitioned);
  net.heal();
  EXPECT_TRUE(net.reachable(0, 2));
  EXPECT_EQ(net.send_datagram(0, 2, d), Fate::Delivered);

  net.set_crashed(1, true);
  EXPECT_EQ(net.send_datagram(0, 1, d), Fate::Crashed);
  EXPECT_EQ(net.send_datagram(1, 0, d), Fate::Crashed);
  EXPECT_EQ(net.deliverable(0, 1), Fate::Crashed);
  net.set_crashed(1, false);
  EXPECT_EQ(net.send_datagram(0, 1, d), Fate::Delivered);
}

// One-way fault: a node whose inbound is dropped still sends datagrams, but neither receives
// anything nor connects a stream (TCP needs the SYN-ACK to come back).
TEST(NetworkModel, InboundBlockedNodeSendsDatagramsButOpensNoStream) {
  NetworkModel net(19);
  net.set_inbound_blocked(0, true);
  Duration d{};
  EXPECT_EQ(net.send_datagram(0, 1, d), Fate::Delivered);
  EXPECT_EQ(net.send_datagram(1, 0, d), Fate::Partitioned);
  EXPECT_EQ(net.send_stream(1, 0, d), Fate::Partitioned);
  EXPECT_EQ(net.send_stream(0, 1, d), Fate::Partitioned);
  net.set_inbound_blocked(0, false);
  EXPECT_EQ(net.send_stream(0, 1, d), Fate::Delivered);
  EXPECT_EQ(net.send_stream(1, 0, d), Fate::Delivered);
}

TEST(NetworkModel, StreamsAreNeverLost) {
  NetworkModel net(17);
  net.set_default_link(LinkModel{0.9, 1ms, 0ms});
  Duration d{};
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(net.send_stream(0, 1, d), Fate::Delivered);
}

}  // namespace
}  // namespace memberlist::sim
