// A paused process (Simulator::pause: SIGSTOP, a long GC or VM pause) in virtual time: the
// pause itself, and, at 5 nodes with the Local preset (probe 1 s, probe timeout 200 ms,
// suspicion mult 3: a suspicion lasts 3 s to 18 s), pauses of 1 s and 2 s cause no false
// death: whoever suspects the paused node, it refutes as soon as it runs again.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include "sim/simulator.h"

namespace memberlist::sim {
namespace {

using namespace std::chrono_literals;
using core::Config;
using core::NodeState;

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// While paused a node sends nothing (no timer fires) and handles nothing, though traffic
// for it arrives; once resumed it handles what came and its overdue timers at once.
TEST(Pause, APausedNodeHandlesNothingUntilResumed) {
  Options o;
  o.seed = 3;
  Simulator sim(o);
  for (int i = 0; i < 2; ++i) sim.add_node(Config::local());
  sim.seed_membership();
  sim.run_for(5s);
  const uint64_t received = sim.counters(1).packets_received, sent = sim.counters(1).packets_sent;
  const uint64_t pinged = sim.counters(0).packets_sent;
  sim.pause(1);
  EXPECT_TRUE(sim.paused(1));
  sim.run_for(3s);
  EXPECT_GT(sim.counters(0).packets_sent, pinged) << "node 0 kept probing it";
  EXPECT_EQ(sim.counters(1).packets_received, received);
  EXPECT_EQ(sim.counters(1).packets_sent, sent);
  sim.resume(1);
  EXPECT_FALSE(sim.paused(1));
  sim.run_for(1ms);
  EXPECT_GT(sim.counters(1).packets_received, received) << "what reached it while paused is handled";
  EXPECT_GT(sim.counters(1).packets_sent, sent) << "its acks and overdue probe go out";
}

struct PauseRun {
  std::optional<Duration> suspected;  // first time any node listed it Suspect, from the pause
  std::optional<Duration> refuted;    // when its incarnation went up, from the resume
  std::optional<Duration> cleared;    // when nobody listed it Suspect any more, from the resume
  size_t deaths = 0;                  // Dead events, about anyone, during the run
};

// 5 nodes (Local preset) seeded as converged and in their steady state; node 2 is paused for
// `pause`, then runs 30 s more. State is sampled every 10 ms.
PauseRun pause_run(Duration pause, uint64_t seed) {
  Options o;
  o.seed = seed;
  Simulator sim(o);
  const Config c = Config::local();
  for (int i = 0; i < 5; ++i) sim.add_node(c);
  sim.seed_membership();
  sim.run_for(20s);
  const NodeId x = 2;
  const std::vector<NodeId> all{0, 1, 2, 3, 4};
  const uint32_t incarnation = sim.core(x).local_node().incarnation;
  const size_t events_before = sim.events().size();
  PauseRun r;
  bool suspect_now = false;
  auto sample = [&](Instant from) {
    suspect_now = false;
    for (NodeId i : all)
      if (i != x && sim.state_seen(i, x) == NodeState::Suspect) suspect_now = true;
    if (suspect_now && !r.suspected) r.suspected = sim.now() - from;
    return false;
  };
  const Instant paused = sim.now();
  sim.pause(x);
  sim.run_until([&] { return sample(paused); }, paused + pause, 10ms);
  sim.resume(x);
  const Instant resumed = sim.now();
  sim.run_until(
      [&] {
        sample(paused);
        if (!r.refuted && sim.core(x).local_node().incarnation > incarnation) r.refuted = sim.now() - resumed;
        if (r.suspected && !suspect_now && !r.cleared) r.cleared = sim.now() - resumed;
        return false;
      },
      resumed + 30s, 10ms);
  for (size_t i = events_before; i < sim.events().size(); ++i)
    r.deaths += sim.events()[i].state == NodeState::Dead;
  EXPECT_TRUE(sim.all_see(all, all, NodeState::Alive)) << "seed " << seed;
  if (r.suspected) {
    EXPECT_GE(sim.core(x).stats().refutes, 1u) << "seed " << seed;
  }
  return r;
}

TEST(Pause, OneAndTwoSecondPausesCauseNoFalseDeath) {
  for (Duration pause : {Duration{1s}, Duration{2s}}) {
    size_t suspected = 0;
    Duration first_min = Duration::max(), first_max{}, refute_max{}, clear_max{};
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      PauseRun r = pause_run(pause, seed);
      EXPECT_EQ(r.deaths, 0u) << "pause " << seconds(pause) << " s, seed " << seed;
      if (!r.suspected) continue;
      ++suspected;
      ASSERT_TRUE(r.refuted) << "suspected but never refuted; seed " << seed;
      ASSERT_TRUE(r.cleared) << "still suspected 30 s after the resume; seed " << seed;
      first_min = std::min(first_min, *r.suspected);
      first_max = std::max(first_max, *r.suspected);
      refute_max = std::max(refute_max, *r.refuted);
      clear_max = std::max(clear_max, *r.cleared);
    }
    std::printf("5 nodes (Local), %.0f s pause, 10 seeds: no false death; suspected in %zu", seconds(pause),
                suspected);
    if (suspected > 0)
      std::printf(" (first suspicion %.2f-%.2f s after the pause began), refuted within %.3f s of the resume, "
                  "suspicion gone everywhere within %.3f s of it\n",
                  seconds(first_min), seconds(first_max), seconds(refute_max), seconds(clear_max));
    else
      std::printf("\n");
    // A 2 s pause outlasts a probe (1 s): the refutation path is exercised, not just avoided.
    if (pause == 2s) {
      EXPECT_GT(suspected, 0u);
    }
  }
}

}  // namespace
}  // namespace memberlist::sim
