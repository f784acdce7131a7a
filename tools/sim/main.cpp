// memberlist-sim: the simulator at scale, from the command line (docs/simulator.md).
//   memberlist-sim --nodes N [--scenario converge|detect|disseminate|loss] [--seed S]
//                  [--preset lan|local|wan] [--burst K] [--stagger MS] [--seeded|--joins] [--view V]
//                  [--loss P] [--duration S] [--sample MS] [--curve FILE.csv]
// Prints convergence time, detection time, messages and bytes per node per protocol
// period, and simulated node-seconds per CPU second (user time) and per wall second.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sim/simulator.h"

namespace {

using namespace memberlist;
using namespace std::chrono_literals;
using sim::NodeId;

double secs(core::Duration d) { return std::chrono::duration<double>(d).count(); }
core::Duration dur(double s) { return std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(s)); }

double user_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec) + double(ru.ru_utime.tv_usec) / 1e6;
}

int usage() {
  std::fprintf(stderr,
               "usage: memberlist-sim --nodes N [--scenario converge|detect|disseminate|loss] [--seed S]\n"
               "         [--preset lan|local|wan] [--burst K] [--stagger MS] [--seeded|--joins] [--view V]\n"
               "         [--loss P] [--duration SECONDS] [--sample MS] [--curve FILE.csv]\n"
               "  converge     every node joins node 0 (node i at i*stagger; --stagger 0 = all at once);\n"
               "               reports the time until every node lists every node\n"
               "  detect       node N/2 crashes; reports the time until every other node declares it dead\n"
               "  disseminate  gossip only (probes and push/pull off): node 0 updates its metadata;\n"
               "               reports the time until every node has the news\n"
               "  loss         runs --duration seconds with --loss on every link; reports false deaths\n"
               "  --seeded     skip the join phase: start from a converged membership (default for\n"
               "               detect and disseminate; --view V gives each node V random peers instead)\n"
               "  --joins      form the cluster by joins first (node i joins node 0 at i*stagger)\n"
               "  --curve F    writes the fraction-knowing curve (t, fraction) as CSV, for plot.py\n");
  return 2;
}

// The fraction-knowing curve: sampled every `step` of virtual time.
struct Curve {
  std::vector<std::pair<double, double>> points;
  void add(double t, double f) { points.emplace_back(t, f); }
  bool write(const std::string& path, const std::string& header) const {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    std::fputs(header.c_str(), f);
    std::fputs("t,fraction\n", f);
    for (auto [t, v] : points) std::fprintf(f, "%.4f,%.6f\n", t, v);
    return std::fclose(f) == 0;
  }
};

}  // namespace

int main(int argc, char** argv) {
  size_t nodes = 100, view = SIZE_MAX;
  uint64_t seed = 1;
  std::string scenario = "converge", preset = "lan", curve_path;
  double loss = 0.0, duration = 0.0, stagger_ms = 10.0, sample_ms = 0.0;
  int burst = -1;
  bool seeded = false, seeded_set = false;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--nodes")) nodes = std::strtoull(argv[++i], nullptr, 10);
    else if (arg("--seed")) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (arg("--scenario")) scenario = argv[++i];
    else if (arg("--loss")) loss = std::strtod(argv[++i], nullptr);
    else if (arg("--duration")) duration = std::strtod(argv[++i], nullptr);
    else if (arg("--preset")) preset = argv[++i];
    else if (arg("--burst")) burst = std::atoi(argv[++i]);
    else if (arg("--stagger")) stagger_ms = std::strtod(argv[++i], nullptr);
    else if (arg("--view")) view = std::strtoull(argv[++i], nullptr, 10);
    else if (arg("--sample")) sample_ms = std::strtod(argv[++i], nullptr);
    else if (arg("--curve")) curve_path = argv[++i];
    else if (std::strcmp(argv[i], "--seeded") == 0) seeded = seeded_set = true;
    else if (std::strcmp(argv[i], "--joins") == 0) seeded = false, seeded_set = true;
    else return usage();
  }
  const bool known = scenario == "converge" || scenario == "detect" || scenario == "disseminate" || scenario == "loss";
  if (nodes < 2 || loss < 0 || loss >= 1 || duration < 0 || stagger_ms < 0 || !known ||
      burst > core::kMaxPostJoinPushPulls)
    return usage();
  if (!seeded_set) seeded = scenario == "detect" || scenario == "disseminate";
  if (view != SIZE_MAX && !seeded_set) seeded = true;
  if (scenario == "converge") seeded = false;

  core::Config cfg = preset == "local" ? core::Config::local()
                     : preset == "wan" ? core::Config::wan()
                                       : core::Config::lan();
  if (burst >= 0) cfg.post_join_push_pulls = burst;
  if (scenario == "disseminate") {
    // Dissemination only: no probes (no piggybacking on them, no failure detection), no
    // anti-entropy. What is left is SWIM's infection-style gossip.
    cfg.probe_interval = 0s;
    cfg.push_pull_interval = 0s;
  }
  const core::Duration sample = sample_ms > 0 ? dur(sample_ms / 1000) : cfg.gossip_interval;

  sim::Options opts;
  opts.seed = seed;
  opts.record_events = false;
  sim::Simulator s(opts);
  const double cpu_start = user_cpu();
  const auto wall_start = std::chrono::steady_clock::now();
  Curve curve;
  std::string curve_what;

  for (size_t i = 0; i < nodes; ++i) s.add_node(cfg);
  std::printf("nodes %zu, seed %llu, preset %s, scenario %s, post_join_push_pulls %d, %s\n", nodes,
              (unsigned long long)seed, preset.c_str(), scenario.c_str(), cfg.post_join_push_pulls,
              seeded ? (view == SIZE_MAX ? "pre-seeded full membership" : "pre-seeded partial views") : "joins");

  if (seeded) {
    s.seed_membership(view);
    std::printf("membership seeded: %llu (observer, member) pairs known (view %s)\n",
                (unsigned long long)s.known_pairs(),
                view == SIZE_MAX ? "all" : std::to_string(view).c_str());
  } else {
    // Node i joins node 0 at i * stagger.
    const core::Duration stagger = dur(stagger_ms / 1000);
    for (NodeId id = 1; id < nodes; ++id)
      s.at(core::Instant{stagger * int64_t(id)}, [&s, id] { s.join(id, 0); });
    const uint64_t all = uint64_t(nodes) * nodes;
    curve_what = "(observer, member) pairs known";
    std::optional<core::Instant> converged;
    const core::Instant limit = core::Instant{600s};
    while (s.now() < limit) {
      curve.add(secs(s.now()), double(s.known_pairs()) / double(all));
      if (s.known_pairs() == all) {
        converged = s.now();
        break;
      }
      s.run_for(sample);
    }
    if (!converged) {
      std::printf("convergence: NOT reached within 600 s of virtual time\n");
      return 1;
    }
    std::printf("convergence: %.2f s (joins spread over %.2f s; %.1f gossip intervals after the last join)\n",
                secs(*converged), secs(stagger * int64_t(nodes - 1)),
                secs(*converged - core::Instant{stagger * int64_t(nodes - 1)}) / secs(cfg.gossip_interval));
  }

  // Measure traffic from here on.
  std::vector<sim::NodeCounters> base(nodes);
  for (NodeId i = 0; i < nodes; ++i) base[i] = s.counters(i);
  const core::Instant measure_start = s.now();
  const double cpu_measure = user_cpu();
  const auto wall_measure = std::chrono::steady_clock::now();
  int rc = 0;

  if (scenario == "detect" || scenario == "disseminate") {
    // Who has the news: a Leave event with state Dead about the victim, or an Update event
    // about node 0.
    const NodeId subject = scenario == "detect" ? NodeId(nodes / 2) : 0;
    const std::string name = s.name(subject);
    std::vector<char> knows(nodes, 0);
    size_t knowing = 0;
    const bool detect = scenario == "detect";
    s.set_event_tap([&](NodeId observer, const core::Event& e) {
      if (observer == subject || knows[observer] || e.node.name != name) return;
      // With partial views most nodes never knew node 0: for them the news is a Join.
      bool news = detect ? (e.type == core::EventType::Leave && e.node.state == core::NodeState::Dead)
                         : e.type == core::EventType::Update || e.type == core::EventType::Join;
      if (news) {
        knows[observer] = 1;
        knowing++;
      }
    });
    const size_t others = nodes - 1;
    if (detect) {
      s.crash(subject);
      curve_what = "nodes that declared the crashed node dead";
    } else {
      if (!s.update_meta(subject, core::Bytes{'v', '2'}).ok()) return 1;
      curve_what = "nodes that have the news (an alive message with new metadata)";
    }
    const core::Duration limit = duration > 0 ? dur(duration) : (detect ? 300s : 120s);
    std::optional<core::Instant> first_known, done;
    while (s.now() < measure_start + limit) {
      curve.add(secs(s.now() - measure_start), double(knowing) / double(others));
      if (knowing > 0 && !first_known) first_known = s.now();
      if (knowing == others) {
        done = s.now();
        break;
      }
      s.run_for(sample);
    }
    const char* what = detect ? "detection" : "dissemination";
    if (done) {
      std::printf("%s: all %zu others know after %.2f s (first after %.2f s; %.1f gossip intervals "
                  "from first to all)\n",
                  what, others, secs(*done - measure_start), secs(*first_known - measure_start),
                  secs(*done - *first_known) / secs(cfg.gossip_interval));
    } else {
      std::printf("%s: NOT all within %.0f s (%zu of %zu know)\n", what, secs(limit), knowing, others);
      rc = 1;
    }
  } else if (scenario == "loss") {
    s.set_default_link(sim::LinkModel{loss, 1ms, 2ms});
    s.run_for(dur(duration > 0 ? duration : 60));
  } else if (duration > 0) {
    s.run_for(dur(duration));
  }

  const double cpu_run = user_cpu() - cpu_measure;
  const double wall_run = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_measure).count();
  const double period = secs(s.now() - measure_start);
  uint64_t pkts = 0, bytes = 0, stream_bytes = 0, streams = 0, lost = 0;
  uint64_t suspicions = 0, refutes = 0;
  size_t dead_views = 0;
  for (NodeId i = 0; i < nodes; ++i) {
    const auto& c = s.counters(i);
    pkts += c.packets_sent - base[i].packets_sent;
    bytes += c.bytes_sent - base[i].bytes_sent;
    streams += c.streams_opened - base[i].streams_opened;
    stream_bytes += c.stream_bytes_sent - base[i].stream_bytes_sent;
    lost += c.packets_lost - base[i].packets_lost;
    if (s.crashed(i)) continue;
    auto st = s.core(i).stats();
    suspicions += st.suspicions;
    refutes += st.refutes;
    dead_views += st.dead;
  }
  // The protocol period is the probe interval (gossip interval when probing is off).
  const core::Duration proto = cfg.probe_interval > core::Duration::zero() ? cfg.probe_interval : cfg.gossip_interval;
  if (period > 0) {
    const double per = double(nodes) * period / secs(proto);
    std::printf("measured %.1f s after %s (%.0f protocol periods of %.2f s)\n", period,
                seeded ? "seeding" : "convergence", period / secs(proto), secs(proto));
    std::printf("per node per protocol period: %.2f messages (datagrams), %.0f bytes UDP; %.4f streams, "
                "%.0f bytes TCP\n",
                double(pkts) / per, double(bytes) / per, double(streams) / per, double(stream_bytes) / per);
  }
  std::printf("packets lost: %llu of %llu; suspicions %llu, refutes %llu, dead entries in views %zu\n",
              (unsigned long long)lost, (unsigned long long)pkts, (unsigned long long)suspicions,
              (unsigned long long)refutes, dead_views);
  const double cpu = user_cpu() - cpu_start;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const double node_s = double(nodes) * secs(s.now());
  std::printf("speed overall: %.0f simulated node-seconds per CPU second (user time; %.0f per wall second); "
              "%.0f node-s in %.1f s user, %.1f s wall, %llu events\n",
              cpu > 0 ? node_s / cpu : 0.0, wall > 0 ? node_s / wall : 0.0, node_s, cpu, wall,
              (unsigned long long)s.events_executed());
  const double node_s_run = double(nodes) * period;
  if (period > 0) std::printf("speed after %s: %.0f simulated node-seconds per CPU second (user; %.0f per wall second); "
              "%.0f node-s in %.2f s user, %.2f s wall\n",
              seeded ? "seeding" : "convergence", cpu_run > 0 ? node_s_run / cpu_run : 0.0,
              wall_run > 0 ? node_s_run / wall_run : 0.0, node_s_run, cpu_run, wall_run);
  // Same seed and options => same hash: a change meant only to be faster must keep it.
  std::printf("trace hash %016llx, %llu events\n", (unsigned long long)s.trace_hash(), (unsigned long long)s.events_executed());
  if (!curve_path.empty()) {
    char header[512];
    std::snprintf(header, sizeof header,
                  "# scenario=%s nodes=%zu fanout=%d gossip_interval=%.3f retransmit_mult=%d view=%s what=%s\n",
                  scenario.c_str(), nodes, cfg.gossip_nodes, secs(cfg.gossip_interval), cfg.retransmit_mult,
                  view == SIZE_MAX ? "all" : std::to_string(view).c_str(), curve_what.c_str());
    if (!curve.write(curve_path, header)) {
      std::fprintf(stderr, "cannot write %s\n", curve_path.c_str());
      return 1;
    }
    std::printf("curve: %zu points written to %s\n", curve.points.size(), curve_path.c_str());
  }
  // Skip the teardown: freeing 10^8 member records one by one took longer than the
  // simulated run; the OS takes the memory back at once.
  std::fflush(stdout);
  std::_Exit(rc);
}
