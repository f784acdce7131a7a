// Automatic reconnection (Config::reconnect_interval) in virtual time: clusters heal
// without a call from the application, within one reconnect interval plus one push/pull
// interval of the network coming back (issue 16), and never undo a leave or bring a
// replaced node back at its old address.
// The push/pull interval in that bound is the one a node uses at the cluster's size:
// Config::push_pull_interval scaled by push_pull_scale (x1 up to 32 nodes, x3 at 100, x6 at
// 1,000); reconnect_interval is not scaled.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <unordered_set>

#include "core/formulas.h"
#include "sim/simulator.h"

namespace memberlist::sim {
namespace {

using namespace std::chrono_literals;
using core::Config;
using core::NodeState;

std::vector<NodeId> range(NodeId from, NodeId to) {
  std::vector<NodeId> v;
  for (NodeId i = from; i < to; ++i) v.push_back(i);
  return v;
}

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// n nodes joined to node 0, converged (every node sees every node alive).
bool form(Simulator& sim, size_t n, const Config& c) {
  for (size_t i = 0; i < n; ++i) sim.add_node(c);
  for (NodeId i = 1; i < n; ++i) sim.at(sim.now() + 20ms * int64_t(i), [&sim, i] { sim.join(i, 0); });
  auto all = range(0, NodeId(n));
  return sim.run_until([&] { return sim.all_see(all, all, NodeState::Alive); }, sim.now() + 90s, 250ms)
      .has_value();
}

// No node of `observers` lists a node of `subjects` as alive or suspect (dead or reaped).
bool none_alive(const Simulator& sim, const std::vector<NodeId>& observers, const std::vector<NodeId>& subjects) {
  for (NodeId o : observers)
    for (NodeId s : subjects) {
      auto st = sim.state_seen(o, s);
      if (st && (*st == NodeState::Alive || *st == NodeState::Suspect)) return false;
    }
  return true;
}

double total(const Simulator& sim, const char* metric, const char* target) {
  double sum = 0;
  for (NodeId i = 0; i < sim.size(); ++i)
    if (!sim.crashed(i)) sum += sim.core(i).metrics().counter(metric, {{"target", target}});
  return sum;
}

// The heal bound of issue 16 for a cluster of n nodes: one reconnect interval plus one
// push/pull interval as scaled at that size.
Duration heal_bound(const Config& c, size_t n) {
  return c.reconnect_interval + core::push_pull_scale(c.push_pull_interval, n);
}

// A 60 s partition of two nodes from three, then the network comes back. Returns the time
// from the heal to every node seeing every node alive (nullopt: not within the bound).
std::optional<Duration> partition_run(const Config& c, uint64_t seed) {
  Options o;
  o.seed = seed;
  Simulator sim(o);
  EXPECT_TRUE(form(sim, 5, c));
  auto left = range(0, 2), right = range(2, 5), all = range(0, 5);
  sim.partition({left, right});
  sim.run_for(60s);
  EXPECT_TRUE(none_alive(sim, left, right) && none_alive(sim, right, left))
      << "each side must have declared the other dead during the partition";
  sim.heal();
  const Instant healed = sim.now();
  auto merged = sim.run_until([&] { return sim.all_see(all, all, NodeState::Alive); }, healed + heal_bound(c, 5), 100ms);
  if (!merged) return std::nullopt;
  EXPECT_GT(total(sim, "memberlist.reconnect.successes", "member"), 0);
  return *merged - healed;
}

TEST(Reconnect, PartitionHealsWithoutTheApplication) {
  const Config c = Config::lan();
  for (uint64_t seed : {1, 2, 3}) {
    auto t = partition_run(c, seed);
    ASSERT_TRUE(t) << "seed " << seed << ": not all alive within " << seconds(heal_bound(c, 5)) << " s of the heal";
    std::printf("5 nodes, seed %llu: 60 s partition {0,1}|{2,3,4} healed %.1f s after the network came back "
                "(bound %.0f s)\n",
                (unsigned long long)seed, seconds(*t), seconds(heal_bound(c, 5)));
  }
  // The same without reconnection stays split (as the reference): it is the reconnection
  // that heals.
  Config off = c;
  off.reconnect_interval = Duration::zero();
  EXPECT_FALSE(partition_run(off, 1));
}

TEST(Reconnect, NodeThatStoppedReceivingComesBack) {
  Options o;
  o.seed = 7;
  Simulator sim(o);
  const Config c = Config::lan();
  ASSERT_TRUE(form(sim, 5, c));
  auto all = range(0, 5), others = range(1, 5);
  sim.block_inbound(0, true);
  sim.run_for(120s);
  ASSERT_TRUE(none_alive(sim, {0}, others)) << "the deaf node must have declared everyone dead";
  ASSERT_TRUE(none_alive(sim, others, {0})) << "the others must have declared the deaf node dead";
  sim.block_inbound(0, false);
  const Instant back = sim.now();
  auto merged = sim.run_until([&] { return sim.all_see(all, all, NodeState::Alive); }, back + heal_bound(c, 5), 100ms);
  ASSERT_TRUE(merged) << "not all alive within " << seconds(heal_bound(c, 5)) << " s";
  std::printf("5 nodes, deaf for 120 s: back %.1f s after its inbound traffic returned (bound %.0f s)\n",
              seconds(*merged - back), seconds(heal_bound(c, 5)));
}

TEST(Reconnect, GracefulLeaveIsNotUndone) {
  Options o;
  o.seed = 11;
  Simulator sim(o);
  const Config c = Config::lan();
  ASSERT_TRUE(form(sim, 5, c));
  // A node dies first, so that every node has reconnection work and its timer runs.
  sim.crash(3);
  ASSERT_TRUE(sim.run_until([&] { return none_alive(sim, {0, 1, 2, 4}, {3}); }, sim.now() + 60s, 250ms));
  // Node 4 leaves but its process keeps running and answering.
  ASSERT_TRUE(sim.leave(4).ok());
  ASSERT_TRUE(sim.run_until([&] { return sim.all_see({0, 1, 2}, {4}, NodeState::Left); }, sim.now() + 10s, 50ms));
  sim.run_for(4 * c.reconnect_interval);
  EXPECT_TRUE(none_alive(sim, {0, 1, 2}, {4})) << "a leave was undone";
  EXPECT_TRUE(sim.core(4).has_left());
  for (NodeId i : {0, 1, 2}) EXPECT_EQ(sim.core(i).num_members(), 3u) << "node " << i;
  // The left node itself tries nobody.
  EXPECT_EQ(sim.core(4).metrics().counter("memberlist.reconnect.attempts", {{"target", "member"}}), 0);
  // The others tried the crashed node, and only it: nothing was sent to the leaver.
  EXPECT_GT(total(sim, "memberlist.reconnect.attempts", "member"), 0);
}

TEST(Reconnect, ReplacedNodeIsNotBroughtBackAtItsOldAddress) {
  Options o;
  o.seed = 13;
  Simulator sim(o);
  const Config c = Config::lan();
  ASSERT_TRUE(form(sim, 5, c));
  auto rest = range(0, 4);
  sim.crash(4);
  ASSERT_TRUE(sim.run_until([&] { return none_alive(sim, rest, {4}); }, sim.now() + 60s, 250ms));
  // The same name comes back at another address (a rescheduled container).
  Config again = c;
  again.name = sim.name(4);
  const NodeId moved = sim.add_node(again);
  sim.join(moved, 0);
  const core::Address new_addr = Simulator::address_of(moved);
  auto at_new_address = [&] {
    for (NodeId i : rest) {
      bool found = false;
      for (const auto& m : sim.core(i).members())
        if (m.name == again.name && m.addr == new_addr && m.state == NodeState::Alive) found = true;
      if (!found) return false;
    }
    return true;
  };
  // The old record blocks the new address until it is reaped (dead_node_reclaim_time 0).
  ASSERT_TRUE(sim.run_until(at_new_address, sim.now() + c.gossip_to_the_dead_time + 2 * c.push_pull_interval, 250ms));
  // From now on nobody tries the old address: the name lives elsewhere.
  uint64_t to_old = 0;
  sim.set_packet_tap([&](NodeId, NodeId to, std::span<const uint8_t>) { to_old += to == 4 ? 1 : 0; });
  sim.run_for(3 * c.reconnect_interval);
  EXPECT_EQ(to_old, 0u) << "datagrams sent to the replaced node's old address";
  EXPECT_TRUE(at_new_address());
}

TEST(Reconnect, KnobsDefaultOnAndValidated) {
  for (const Config& c : {Config::lan(), Config::wan(), Config::local()}) {
    EXPECT_EQ(c.reconnect_interval, 30s);
    EXPECT_EQ(c.reconnect_timeout, 24h);
    EXPECT_TRUE(c.reconnect_seeds);
  }
  Config c = Config::lan();
  c.name = "a";
  c.reconnect_interval = -1s;
  EXPECT_NE(c.validate().message.find("reconnect_interval"), std::string::npos);
  c.reconnect_interval = 30s;
  c.reconnect_timeout = -1s;
  EXPECT_NE(c.validate().message.find("reconnect_timeout"), std::string::npos);
  c.reconnect_timeout = 24h;
  c.max_reconnect_members = 0;
  EXPECT_NE(c.validate().message.find("max_reconnect_members"), std::string::npos);
}

// ---- at scale: 100 and 1,000 nodes, LAN preset, seeded as a converged cluster ---------------

// (observer, subject) pairs, by what the observer lists about the subject. One pass over each
// observer's list: cheap enough at 1,000 nodes to call now and then.
struct Pairs {
  size_t live = 0;    // Alive or Suspect
  size_t dead = 0;    // Dead
  size_t reaped = 0;  // no longer listed
};

Pairs pairs(const Simulator& sim, const std::vector<NodeId>& observers, const std::vector<NodeId>& subjects) {
  std::unordered_set<std::string> names;
  for (NodeId s : subjects) names.insert(sim.name(s));
  Pairs p;
  for (NodeId o : observers) {
    size_t listed = 0;
    for (const auto& info : sim.core(o).all_nodes()) {
      if (!names.count(info.name)) continue;
      ++listed;
      (info.state == NodeState::Alive || info.state == NodeState::Suspect ? p.live : p.dead)++;
    }
    p.reaped += subjects.size() - listed;
  }
  return p;
}

// Every node lists every node Alive. The event-kept count of listed pairs first (O(n)); the
// lists themselves only once it is complete.
bool all_alive(const Simulator& sim) {
  const uint64_t n = sim.size();
  if (sim.known_pairs() != n * n) return false;
  auto all = range(0, NodeId(n));
  return sim.all_see(all, all, NodeState::Alive);
}

// n nodes seeded as converged, split [0, cut) | [cut, n) for 60 s, or longer until each side
// has declared every member of the other dead: at this size a few members learn of some
// deaths only from a later push/pull (the gossip of a side reaches fewer than its fanout,
// as most targets are across the cut). Then the network comes back. Returns the time from
// then until every node lists every node alive; nullopt if not within the bound.
std::optional<Duration> split_and_heal(size_t n, NodeId cut, uint64_t seed) {
  Options o;
  o.seed = seed;
  o.record_events = false;
  Simulator sim(o);
  const Config c = Config::lan();
  for (size_t i = 0; i < n; ++i) sim.add_node(c);
  sim.seed_membership();
  auto left = range(0, cut), right = range(cut, NodeId(n));
  sim.partition({left, right});
  const Instant split = sim.now();
  sim.run_for(60s);
  // Listed pairs (from events, cheap) equal to the two sides' own first; then the lists.
  const uint64_t within = uint64_t(cut) * cut + uint64_t(n - cut) * (n - cut);
  auto apart = [&] {
    return sim.known_pairs() == within && pairs(sim, left, right).live + pairs(sim, right, left).live == 0;
  };
  const Duration push_pull = core::push_pull_scale(c.push_pull_interval, n);
  EXPECT_TRUE(sim.run_until(apart, split + 60s + 2 * push_pull, 5s))
      << "each side must have declared the other dead during the partition";
  const Pairs l = pairs(sim, left, right), r = pairs(sim, right, left);
  sim.heal();
  const Instant healed = sim.now();
  const Duration bound = heal_bound(c, n);
  auto merged = sim.run_until([&] { return all_alive(sim); }, healed + bound, 500ms);
  std::printf("%zu nodes, partition %u|%zu for %.0f s (at the heal %zu cross pairs dead, %zu reaped, %zu live): ", n,
              unsigned(cut), n - cut, seconds(healed - split), l.dead + r.dead, l.reaped + r.reaped, l.live + r.live);
  if (merged)
    std::printf("all alive %.1f s after the network came back (bound %.0f s)\n", seconds(*merged - healed),
                seconds(bound));
  else
    std::printf("not merged within the bound (%.0f s)\n", seconds(bound));
  EXPECT_GT(total(sim, "memberlist.reconnect.successes", "member"), 0);
  if (!merged) return std::nullopt;
  return *merged - healed;
}

// n nodes seeded as converged; everything sent to node 0 is dropped for 2 minutes. Returns
// the time from its inbound traffic coming back until every node lists every node alive;
// nullopt if not within the bound.
std::optional<Duration> deaf_and_back(size_t n, uint64_t seed) {
  Options o;
  o.seed = seed;
  o.record_events = false;
  Simulator sim(o);
  const Config c = Config::lan();
  for (size_t i = 0; i < n; ++i) sim.add_node(c);
  sim.seed_membership();
  auto others = range(1, NodeId(n));
  sim.block_inbound(0, true);
  sim.run_for(120s);
  const Pairs of_deaf = pairs(sim, others, {0}), by_deaf = pairs(sim, {0}, others);
  EXPECT_EQ(of_deaf.live, 0u) << "the others must have declared the deaf node dead";
  // It probes one member a period (fewer as its health score rises), so at this size it
  // has declared only some of the others dead; but some.
  EXPECT_GT(by_deaf.dead + by_deaf.reaped, 0u) << "the deaf node must have declared members dead";
  sim.block_inbound(0, false);
  const Instant back = sim.now();
  const Duration bound = heal_bound(c, n);
  auto merged = sim.run_until([&] { return all_alive(sim); }, back + bound, 500ms);
  std::printf("%zu nodes, node 0 deaf for 120 s (it had declared %zu of %zu dead; %zu of the others had it dead, "
              "%zu reaped): ",
              n, by_deaf.dead + by_deaf.reaped, n - 1, of_deaf.dead, of_deaf.reaped);
  if (merged)
    std::printf("all alive %.1f s after its inbound traffic returned (bound %.0f s)\n", seconds(*merged - back),
                seconds(bound));
  else
    std::printf("not back within the bound (%.0f s)\n", seconds(bound));
  if (!merged) return std::nullopt;
  return *merged - back;
}

TEST(Reconnect, HundredNodePartitionHeals) {
  EXPECT_TRUE(split_and_heal(100, 30, 21)) << "100 nodes not merged within " << seconds(heal_bound(Config::lan(), 100))
                                           << " s of the heal";
}

TEST(Reconnect, HundredNodesNodeThatStoppedReceivingComesBack) {
  EXPECT_TRUE(deaf_and_back(100, 23)) << "not all alive within " << seconds(heal_bound(Config::lan(), 100)) << " s";
}

TEST(ReconnectLarge, ThousandNodePartitionHeals) {
  EXPECT_TRUE(split_and_heal(1000, 300, 22))
      << "1,000 nodes not merged within " << seconds(heal_bound(Config::lan(), 1000)) << " s of the heal";
}

TEST(ReconnectLarge, ThousandNodesNodeThatStoppedReceivingComesBack) {
  EXPECT_TRUE(deaf_and_back(1000, 24)) << "not all alive within " << seconds(heal_bound(Config::lan(), 1000)) << " s";
}

}  // namespace
}  // namespace memberlist::sim
