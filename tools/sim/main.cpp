// memberlist-sim: larger simulator runs from the command line.
//   memberlist-sim --nodes N --seed S --scenario converge|crash|loss [--loss 0.1]
//                  [--duration s] [--preset lan|local|wan]
// Prints convergence time, detection time, messages and bytes per node per protocol
// period, and simulated node-seconds per wall second.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sim/simulator.h"

namespace {

using namespace memberlist;
using namespace std::chrono_literals;
using sim::NodeId;

double secs(core::Duration d) { return std::chrono::duration<double>(d).count(); }

int usage() {
  std::fprintf(stderr,
               "usage: memberlist-sim --nodes N --seed S --scenario converge|crash|loss\n"
               "                      [--loss P] [--duration SECONDS] [--preset lan|local|wan]\n");
  return 2;
}

std::vector<NodeId> range(size_t n) {
  std::vector<NodeId> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = NodeId(i);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  size_t nodes = 100;
  uint64_t seed = 1;
  std::string scenario = "converge", preset = "lan";
  double loss = 0.0, duration = 60.0;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--nodes")) nodes = std::strtoull(argv[++i], nullptr, 10);
    else if (arg("--seed")) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (arg("--scenario")) scenario = argv[++i];
    else if (arg("--loss")) loss = std::strtod(argv[++i], nullptr);
    else if (arg("--duration")) duration = std::strtod(argv[++i], nullptr);
    else if (arg("--preset")) preset = argv[++i];
    else return usage();
  }
  if (nodes < 2 || loss < 0 || loss >= 1 || duration <= 0 ||
      (scenario != "converge" && scenario != "crash" && scenario != "loss")) {
    return usage();
  }
  core::Config cfg = preset == "local" ? core::Config::local()
                     : preset == "wan" ? core::Config::wan()
                                       : core::Config::lan();

  sim::Options opts;
  opts.seed = seed;
  opts.record_events = false;
  sim::Simulator s(opts);
  auto wall_start = std::chrono::steady_clock::now();
  auto everyone = range(nodes);

  // Every scenario starts by forming the cluster: node i joins node 0 at i * 10 ms.
  for (size_t i = 0; i < nodes; ++i) {
    NodeId id = s.add_node(cfg);
    if (id > 0) s.at(core::Instant{10ms * int64_t(i)}, [&s, id] { s.join(id, 0); });
  }
  auto converged = s.run_until(
      [&] {
        for (NodeId i : everyone) {
          if (s.core(i).stats().alive != nodes) return false;
        }
        return true;
      },
      core::Instant{std::chrono::seconds(600)}, 250ms);
  if (!converged) {
    std::printf("convergence: NOT reached within 600 s of virtual time\n");
    return 1;
  }
  std::printf("nodes %zu, seed %llu, preset %s, scenario %s\n", nodes, (unsigned long long)seed,
              preset.c_str(), scenario.c_str());
  std::printf("convergence: %.2f s (joins spread over %.2f s)\n", secs(*converged),
              secs(10ms * int64_t(nodes - 1)));

  // Measure traffic from here on.
  std::vector<sim::NodeCounters> base(nodes);
  for (NodeId i : everyone) base[i] = s.counters(i);
  core::Instant measure_start = s.now();
  int rc = 0;

  if (scenario == "loss") s.set_default_link(sim::LinkModel{loss, 1ms, 2ms});
  if (scenario == "crash") {
    NodeId victim = NodeId(nodes / 2);
    s.crash(victim);
    std::vector<NodeId> others;
    for (NodeId i : everyone)
      if (i != victim) others.push_back(i);
    auto seen = s.run_until(
        [&] { return s.all_see(others, {victim}, core::NodeState::Dead); },
        s.now() + std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(duration)),
        100ms);
    if (seen) {
      std::printf("detection: crash of %s seen as dead by all %zu others after %.2f s\n",
                  s.name(victim).c_str(), others.size(), secs(*seen - measure_start));
    } else {
      std::printf("detection: NOT seen by all within %.0f s\n", duration);
      rc = 1;
    }
  } else {
    s.run_for(std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(duration)));
  }

  double period = secs(s.now() - measure_start);
  uint64_t pkts = 0, bytes = 0, stream_bytes = 0, streams = 0, lost = 0;
  uint64_t suspicions = 0, refutes = 0;
  size_t dead_views = 0;
  for (NodeId i : everyone) {
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
  double periods = period / secs(cfg.probe_interval);
  double per = double(nodes) * periods;
  std::printf("measured %.1f s (%.0f probe periods of %.2f s)\n", period, periods,
              secs(cfg.probe_interval));
  std::printf("per node per protocol period: %.2f packets, %.0f bytes UDP; %.4f streams, %.0f "
              "bytes TCP\n",
              double(pkts) / per, double(bytes) / per, double(streams) / per,
              double(stream_bytes) / per);
  std::printf("packets lost: %llu of %llu (%.2f%%); suspicions %llu, refutes %llu, dead entries "
              "in views %zu\n",
              (unsigned long long)lost, (unsigned long long)pkts,
              pkts ? 100.0 * double(lost) / double(pkts) : 0.0, (unsigned long long)suspicions,
              (unsigned long long)refutes, dead_views);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  std::printf("speed: %.0f simulated node-seconds per wall second (%.1f s wall, %llu events)\n",
              double(nodes) * secs(s.now()) / wall, wall, (unsigned long long)s.events_executed());
  return rc;
}
