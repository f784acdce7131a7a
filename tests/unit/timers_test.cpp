// The core's timers as data: the heap on its own (order, cancelling, payloads) and
// Core::pending_timers() on a Core driven by hand.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/timers.h"
#include "harness.h"

namespace memberlist::test {
namespace {

using namespace core;

std::vector<TimerKind> kinds_of(const std::vector<TimerInfo>& ts) {
  std::vector<TimerKind> out;
  for (const auto& t : ts) out.push_back(t.kind);
  return out;
}

std::vector<TimerInfo> of_kind(const std::vector<TimerInfo>& ts, TimerKind k) {
  std::vector<TimerInfo> out;
  std::copy_if(ts.begin(), ts.end(), std::back_inserter(out), [&](const TimerInfo& t) { return t.kind == k; });
  return out;
}

TEST(TimerHeap, FiresByDeadlineThenCreationAcrossExactAndLaxTimers) {
  TimerHeap h;
  const Instant t0{1000s};
  h.add(t0 + 3s, TimerKind::GossipTick);
  h.add(t0 + 1s, TimerKind::ProbeTick);  // lax
  h.add(t0 + 2s, TimerKind::ProbeTimeout, 7);
  h.add(t0 + 1s, TimerKind::Suspicion, 0, "b");  // same deadline, created later
  const uint64_t dropped = h.add(t0 + 1500ms, TimerKind::PingTimeout, 9, "c");
  h.cancel(dropped);
  h.cancel(dropped);  // twice: a no-op

  EXPECT_EQ(h.next(), t0 + 1s);
  EXPECT_EQ(h.next_exact(), t0 + 1s);  // the suspicion; the probe tick is lax
  auto listed = h.pending();
  EXPECT_EQ(kinds_of(listed), (std::vector<TimerKind>{TimerKind::ProbeTick, TimerKind::Suspicion,
                                                      TimerKind::ProbeTimeout, TimerKind::GossipTick}));
  EXPECT_EQ(listed[1].node, "b");
  EXPECT_EQ(listed[2].seq, 7u);
  EXPECT_EQ(listed[2].deadline, t0 + 2s);

  TimerHeap::Fired f;
  EXPECT_FALSE(h.pop_due(t0 + 999ms, f));
  ASSERT_TRUE(h.pop_due(t0 + 10s, f));
  EXPECT_EQ(f.kind, TimerKind::ProbeTick);
  EXPECT_EQ(f.at, t0 + 1s);
  ASSERT_TRUE(h.pop_due(t0 + 10s, f));
  EXPECT_EQ(f.kind, TimerKind::Suspicion);
  EXPECT_EQ(f.node, "b");
  ASSERT_TRUE(h.pop_due(t0 + 10s, f));
  EXPECT_EQ(f.kind, TimerKind::ProbeTimeout);
  EXPECT_EQ(f.seq, 7u);
  EXPECT_TRUE(f.node.empty());
  ASSERT_TRUE(h.pop_due(t0 + 10s, f));
  EXPECT_EQ(f.kind, TimerKind::GossipTick);
  EXPECT_FALSE(h.pop_due(t0 + 10s, f));
  EXPECT_EQ(h.next(), std::nullopt);
  EXPECT_TRUE(h.pending().empty());
}

// Slots are reused: a timer without a node never shows the name of the slot's last one,
// and a long name comes back whole.
TEST(TimerHeap, NodeNamesFollowTheirTimerThroughSlotReuse) {
  TimerHeap h;
  const Instant t0{0s};
  const std::string long_name(100, 'x');
  h.cancel(h.add(t0 + 1s, TimerKind::Suspicion, 0, long_name));
  h.add(t0 + 2s, TimerKind::ProbeReap, 3);  // reuses the slot
  h.add(t0 + 3s, TimerKind::Suspicion, 0, long_name);
  auto listed = h.pending();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].kind, TimerKind::ProbeReap);
  EXPECT_TRUE(listed[0].node.empty());
  EXPECT_EQ(listed[1].node, long_name);
  TimerHeap::Fired f;
  f.node = "stale";
  ASSERT_TRUE(h.pop_due(t0 + 5s, f));
  EXPECT_TRUE(f.node.empty());
  ASSERT_TRUE(h.pop_due(t0 + 5s, f));
  EXPECT_EQ(f.node, long_name);
}

class CoreTimers : public ::testing::Test {
 protected:
  void make(Config cfg) {
    a = std::make_unique<Core>(std::move(cfg), codec, now);
    drain(*a, *codec);
  }
  void feed(const Message& m, Address from = addr_of(9)) { a->handle_packet(from, codec->encode(m), now); }
  // Fires timers up to `until` (nothing is answered); returns the pings sent.
  std::vector<Ping> run(Instant until) {
    std::vector<Ping> pings;
    while (auto t = a->poll_timeout()) {
      if (*t > until) break;
      now = *t;
      a->handle_timeout(now);
      for (auto& d : drain(*a, *codec))
        for (auto& m : d.msgs)
          if (const auto* p = std::get_if<Ping>(&m)) pings.push_back(*p);
    }
    now = std::max(now, until);
    return pings;
  }

  std::shared_ptr<TestCodec> codec = std::make_shared<TestCodec>();
  Instant now{1000s};
  std::unique_ptr<Core> a;
};

TEST_F(CoreTimers, StartSchedulesThePeriodicTicks) {
  const Config cfg = test_config("a", 1);
  make(cfg);
  auto ts = a->pending_timers();
  ASSERT_EQ(ts.size(), 4u);
  for (TimerKind k : {TimerKind::ProbeTick, TimerKind::PushPullStagger, TimerKind::GossipTick, TimerKind::QueueCheck})
    EXPECT_EQ(of_kind(ts, k).size(), 1u) << static_cast<int>(k);
  // Staggered within one interval; the queue check one interval ahead.
  EXPECT_LT(of_kind(ts, TimerKind::ProbeTick)[0].deadline, now + cfg.probe_interval);
  EXPECT_LT(of_kind(ts, TimerKind::PushPullStagger)[0].deadline, now + cfg.push_pull_interval);
  EXPECT_LT(of_kind(ts, TimerKind::GossipTick)[0].deadline, now + cfg.gossip_interval);
  EXPECT_EQ(of_kind(ts, TimerKind::QueueCheck)[0].deadline, now + cfg.queue_check_interval);
  EXPECT_TRUE(std::is_sorted(ts.begin(), ts.end(), [](auto& x, auto& y) { return x.deadline < y.deadline; }));

  // After the stagger, periodic push/pull ticks take over.
  run(of_kind(ts, TimerKind::PushPullStagger)[0].deadline);
  ts = a->pending_timers();
  EXPECT_TRUE(of_kind(ts, TimerKind::PushPullStagger).empty());
  EXPECT_EQ(of_kind(ts, TimerKind::PushPullTick).size(), 1u);
}

TEST_F(CoreTimers, ProbeTimeoutsAndSuspicionAreListed) {
  Config cfg = test_config("a", 1);
  cfg.gossip_interval = 0s;
  cfg.push_pull_interval = 0s;
  cfg.disable_tcp_pings = true;
  make(cfg);
  feed(Alive{1, "b", addr_of(2), {}, cfg.vsn()});
  EXPECT_EQ(kinds_of(a->pending_timers()), (std::vector<TimerKind>{TimerKind::ProbeTick, TimerKind::QueueCheck}));

  // The probe tick sends a ping to b: its timeouts carry its sequence number.
  auto pings = run(a->pending_timers()[0].deadline);
  ASSERT_EQ(pings.size(), 1u);
  ASSERT_EQ(pings[0].node, "b");
  const Instant sent = now;
  auto ts = a->pending_timers();
  auto timeout = of_kind(ts, TimerKind::ProbeTimeout);
  auto reap = of_kind(ts, TimerKind::ProbeReap);
  ASSERT_EQ(timeout.size(), 1u);
  ASSERT_EQ(reap.size(), 1u);
  EXPECT_EQ(timeout[0].seq, pings[0].seq);
  EXPECT_EQ(timeout[0].deadline, sent + cfg.probe_timeout);
  EXPECT_EQ(reap[0].seq, pings[0].seq);
  EXPECT_EQ(reap[0].deadline, sent + cfg.probe_interval);
  EXPECT_TRUE(of_kind(ts, TimerKind::Suspicion).empty());

  // No ack: b is suspected when the probe's wait ends, with a timer for its suspicion.
  run(sent + cfg.probe_interval);
  ASSERT_EQ(a->stats().suspicions, 1u);
  ts = a->pending_timers();
  // (The next probe tick, at the same instant, may have started another probe.)
  for (const auto& t : ts) {
    if (t.kind == TimerKind::ProbeTimeout || t.kind == TimerKind::ProbeReap) {
      EXPECT_NE(t.seq, pings[0].seq);
    }
  }
  auto sus = of_kind(ts, TimerKind::Suspicion);
  ASSERT_EQ(sus.size(), 1u);
  EXPECT_EQ(sus[0].node, "b");
  EXPECT_GT(sus[0].deadline, now);

  // b refutes: the suspicion and its timer are gone.
  feed(Alive{2, "b", addr_of(2), {}, cfg.vsn()});
  EXPECT_TRUE(of_kind(a->pending_timers(), TimerKind::Suspicion).empty());
}

TEST_F(CoreTimers, PingTimeoutNamesItsTargetAndFails) {
  make(test_config("a", 1));
  const uint64_t id = a->ping("c", addr_of(3), now);
  auto sent = drain(*a, *codec);
  ASSERT_EQ(sent.size(), 1u);
  const uint32_t seq = std::get<Ping>(sent[0].msgs.at(0)).seq;
  auto pt = of_kind(a->pending_timers(), TimerKind::PingTimeout);
  ASSERT_EQ(pt.size(), 1u);
  EXPECT_EQ(pt[0].seq, seq);
  EXPECT_EQ(pt[0].node, "c");
  EXPECT_EQ(pt[0].deadline, now + a->config().probe_timeout);

  run(pt[0].deadline);
  auto r = a->poll_ping_result();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, id);
  EXPECT_FALSE(r->ok);
  EXPECT_TRUE(of_kind(a->pending_timers(), TimerKind::PingTimeout).empty());
}

}  // namespace
}  // namespace memberlist::test
