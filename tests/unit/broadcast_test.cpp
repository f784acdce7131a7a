// Application broadcasts: the built-in epidemic queue (exactly-once delivery, named
// replacement, outcomes, size limits) and the delegate's pull-style broadcasts (budget).
#include <gtest/gtest.h>

#include <deque>

#include "app_cluster.h"
#include "harness.h"
#include "test_delegate.h"

namespace memberlist::test {
namespace {

using namespace core;

// How many times `name` delivered a broadcast with this payload.
int deliveries(Cluster& c, const std::string& name, const std::string& payload) {
  int n = 0;
  for (const auto& b : c.notifications_of<BroadcastReceived>(name))
    if (str(b.payload) == payload) n++;
  return n;
}

std::vector<BroadcastDone> done_of(Cluster& c, const std::string& name) {
  return c.notifications_of<BroadcastDone>(name);
}

TEST(AppBroadcast, ReachesEveryNodeOfTwentyExactlyOnce) {
  Cluster c;
  // Best effort (repair off): the outcome is Delivered once the budget is sent.
  start(c, 20, [](Config& cfg, int) { cfg.max_repair_broadcasts = 0; });
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 20); }, 30s));
  std::vector<uint64_t> ids;
  for (int k = 0; k < 5; ++k) {
    uint64_t id = 0;
    ASSERT_TRUE(c.core("n5").queue_broadcast("", bytes("hello " + std::to_string(k)), id, c.now()).ok());
    ids.push_back(id);
  }
  EXPECT_EQ(c.core("n5").num_queued_broadcasts(), 5u);
  c.run_for(30s);
  for (int i = 1; i <= 20; ++i) {
    for (int k = 0; k < 5; ++k) {
      const std::string p = "hello " + std::to_string(k);
      EXPECT_EQ(deliveries(c, nm(i), p), i == 5 ? 0 : 1) << nm(i) << " " << p;
    }
  }
  for (int i = 1; i <= 20; ++i) {
    if (i == 5) continue;
    for (const auto& b : c.notifications_of<BroadcastReceived>(nm(i))) {
      EXPECT_EQ(b.origin, "n5");
      EXPECT_TRUE(b.name.empty());
    }
  }
  // Each finished at the origin as Delivered, once.
  auto done = done_of(c, "n5");
  ASSERT_EQ(done.size(), 5u);
  for (const auto& d : done) EXPECT_EQ(d.outcome, BroadcastOutcome::Delivered);
  std::set<uint64_t> done_ids;
  for (const auto& d : done) done_ids.insert(d.id);
  EXPECT_EQ(done_ids, std::set<uint64_t>(ids.begin(), ids.end()));
  // Spreading is over: nothing left anywhere.
  for (int i = 1; i <= 20; ++i) EXPECT_EQ(c.core(nm(i)).num_queued_broadcasts(), 0u) << nm(i);
}

TEST(AppBroadcast, ExactlyOnceDespiteLoss) {
  // Delivery is epidemic, as membership news: each node forwards a broadcast
  // retransmit_limit times to random peers. With the Local preset (mult 2: 4 sends per node
  // at n=10) and 20 % loss a node can be missed; the LAN multiplier (8 sends) makes that
  // unlikely. Never twice, whatever happens.
  Cluster c;
  start(c, 10, [](Config& cfg, int) { cfg.retransmit_mult = 4; });
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 10); }, 30s));
  uint64_t counter = 0;
  c.drop_packet = [&](const Address&, const Address&, const Bytes&) { return ++counter % 5 == 0; };
  uint64_t id = 0;
  ASSERT_TRUE(c.core("n1").queue_broadcast("", bytes("lossy"), id, c.now()).ok());
  c.run_for(30s);
  for (int i = 2; i <= 10; ++i) EXPECT_EQ(deliveries(c, nm(i), "lossy"), 1) << nm(i);
}

TEST(AppBroadcast, NamedReplacesAQueuedPredecessorEverywhere) {
  Cluster c;
  // Retransmit 4x (not the Local preset's 2x) so the infect-and-die epidemic reaches all 5 peers.
  // Repair off: the outcome is Delivered once the budget is sent.
  start(c, 6, [](Config& cfg, int) {
    cfg.retransmit_mult = 4;
    cfg.max_repair_broadcasts = 0;
  });
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 6); }, 30s));
  uint64_t v1 = 0, v2 = 0;
  ASSERT_TRUE(c.core("n1").queue_broadcast("config", bytes("v1"), v1, c.now()).ok());
  // Replaced before anyone saw it: only v2 is ever delivered.
  ASSERT_TRUE(c.core("n1").queue_broadcast("config", bytes("v2"), v2, c.now()).ok());
  EXPECT_EQ(c.core("n1").num_queued_broadcasts(), 1u);
  c.run_for(20s);
  for (int i = 2; i <= 6; ++i) {
    EXPECT_EQ(deliveries(c, nm(i), "v1"), 0) << nm(i);
    EXPECT_EQ(deliveries(c, nm(i), "v2"), 1) << nm(i);
    for (const auto& b : c.notifications_of<BroadcastReceived>(nm(i))) EXPECT_EQ(b.name, "config");
  }
  auto done = done_of(c, "n1");
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].id, v1);
  EXPECT_EQ(done[0].outcome, BroadcastOutcome::Replaced);
  EXPECT_EQ(done[1].id, v2);
  EXPECT_EQ(done[1].outcome, BroadcastOutcome::Delivered);
  // A later version after everyone had v2 is delivered too.
  uint64_t v3 = 0;
  ASSERT_TRUE(c.core("n1").queue_broadcast("config", bytes("v3"), v3, c.now()).ok());
  c.run_for(20s);
  for (int i = 2; i <= 6; ++i) EXPECT_EQ(deliveries(c, nm(i), "v3"), 1) << nm(i);
}

TEST(AppBroadcast, NamedVersusUnique) {
  Cluster c;
  start(c, 3);
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 3); }, 10s));
  uint64_t id = 0;
  // Unique ones never replace each other, even with the same payload.
  ASSERT_TRUE(c.core("n1").queue_broadcast("", bytes("same"), id, c.now()).ok());
  ASSERT_TRUE(c.core("n1").queue_broadcast("", bytes("same"), id, c.now()).ok());
  // Different names do not replace each other.
  ASSERT_TRUE(c.core("n1").queue_broadcast("a", bytes("named a"), id, c.now()).ok());
  ASSERT_TRUE(c.core("n1").queue_broadcast("b", bytes("named b"), id, c.now()).ok());
  // The same name from two origins are two broadcasts.
  ASSERT_TRUE(c.core("n2").queue_broadcast("a", bytes("n2 a"), id, c.now()).ok());
  c.run_for(10s);
  EXPECT_EQ(deliveries(c, "n3", "same"), 2);
  EXPECT_EQ(deliveries(c, "n3", "named a"), 1);
  EXPECT_EQ(deliveries(c, "n3", "named b"), 1);
  EXPECT_EQ(deliveries(c, "n3", "n2 a"), 1);
  EXPECT_EQ(deliveries(c, "n2", "named a"), 1);
  EXPECT_EQ(deliveries(c, "n1", "n2 a"), 1);
}

// Single-node checks by injecting broadcasts from a made-up origin.
struct Inject {
  Cluster c;
  Inject() { c.add(test_config("n1", 1)); }
  void send(uint32_t epoch, uint32_t seq, const std::string& name, const std::string& payload) {
    c.core("n1").handle_packet(addr_of(7), c.codec().encode(UserBroadcast{"x", epoch, seq, name, bytes(payload)}), c.now());
    c.run_for(1ms);
  }
  std::vector<std::string> got() {
    std::vector<std::string> out;
    for (const auto& b : c.notifications_of<BroadcastReceived>("n1")) out.push_back(str(b.payload));
    return out;
  }
};

TEST(AppBroadcast, DuplicatesAndReorderingAreDeliveredOnce) {
  Inject in;
  in.send(1, 3, "", "three");
  in.send(1, 1, "", "one");
  in.send(1, 3, "", "three");
  in.send(1, 2, "", "two");
  in.send(1, 1, "", "one");
  in.send(1, 2, "", "two");
  EXPECT_EQ(in.got(), (std::vector<std::string>{"three", "one", "two"}));
  // A restarted origin (new epoch) starts its counter again: delivered.
  in.send(2, 1, "", "after restart");
  // The old epoch's late copies are still recognised.
  in.send(1, 2, "", "two");
  in.send(1, 4, "", "four");
  EXPECT_EQ(in.got(), (std::vector<std::string>{"three", "one", "two", "after restart", "four"}));
  // Broken ones are dropped and counted.
  in.send(1, 0, "", "seq zero");
  EXPECT_EQ(in.got().size(), 5u);
  EXPECT_EQ(in.c.core("n1").metrics().counter("memberlist.bad_messages", {{"reason", "bad_broadcast"}}), 1);
}

TEST(AppBroadcast, OlderNamedAfterNewerIsNotDelivered) {
  Inject in;
  in.send(1, 5, "cfg", "v5");
  in.send(1, 4, "cfg", "v4");    // superseded before we saw it
  in.send(1, 3, "other", "o3");  // another name is unaffected
  in.send(1, 6, "cfg", "v6");
  EXPECT_EQ(in.got(), (std::vector<std::string>{"v5", "o3", "v6"}));
}

TEST(AppBroadcast, OwnBroadcastsComingBackAreIgnored) {
  Inject in;
  in.c.core("n1").handle_packet(addr_of(7), in.c.codec().encode(UserBroadcast{"n1", 1, 1, "", bytes("mine")}), in.c.now());
  in.c.run_for(1ms);
  EXPECT_TRUE(in.got().empty());
}

TEST(AppBroadcast, ForwardedBroadcastsAreRetransmitted) {
  Inject in;
  in.c.add(test_config("n2", 2));
  in.c.join("n2", "n1");
  in.c.run_for(2s);
  in.send(1, 1, "", "relay me");
  // n1 got it from "x" and spreads it to n2 by gossip.
  in.c.run_for(2s);
  EXPECT_EQ(deliveries(in.c, "n2", "relay me"), 1);
}

TEST(AppBroadcast, DroppedOnResetAndPrune) {
  Cluster c;
  c.add(test_config("n1", 1));  // alone: nothing is ever transmitted
  uint64_t a = 0, b = 0, d = 0;
  ASSERT_TRUE(c.core("n1").queue_broadcast("", bytes("a"), a, c.now()).ok());
  ASSERT_TRUE(c.core("n1").queue_broadcast("", bytes("bb"), b, c.now()).ok());
  ASSERT_TRUE(c.core("n1").queue_broadcast("", bytes("ddd"), d, c.now()).ok());
  c.run_for(5s);
  EXPECT_TRUE(done_of(c, "n1").empty());
  c.core("n1").prune_broadcasts(2);
  c.run_for(1ms);
  auto done = done_of(c, "n1");
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, a);  // same transmits: the smallest goes first
  EXPECT_EQ(done[0].outcome, BroadcastOutcome::Dropped);
  c.core("n1").reset_broadcasts();
  c.run_for(1ms);
  done = done_of(c, "n1");
  ASSERT_EQ(done.size(), 3u);
  for (const auto& x : done) EXPECT_EQ(x.outcome, BroadcastOutcome::Dropped);
  EXPECT_EQ(c.core("n1").num_queued_broadcasts(), 0u);
}

TEST(AppBroadcast, SizeLimitIsOneDatagram) {
  Cluster c;
  start(c, 2);
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 2); }, 10s));
  c.run_for(5s);  // let the join news finish
  // Test codec: UserBroadcast = 21 bytes + origin + name + payload; compound 2 + 4 per part.
  const size_t fits = 1400 - 2 - 4 - 21 - 2;
  uint64_t id = 0;
  Status s = c.core("n1").queue_broadcast("", Bytes(fits + 1, 'x'), id, c.now());
  EXPECT_EQ(s.code, Errc::too_large);
  EXPECT_NE(s.message.find("send_reliable"), std::string::npos) << s.message;
  EXPECT_EQ(c.core("n1").num_queued_broadcasts(), 0u);
  ASSERT_TRUE(c.core("n1").queue_broadcast("", Bytes(fits, 'x'), id, c.now()).ok());
  c.run_for(5s);
  auto got = c.notifications_of<BroadcastReceived>("n2");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload.size(), fits);
  for (const auto& p : c.sent()) EXPECT_LE(p.data.size(), 1400u);
  // Names: at most 255 bytes, no NUL.
  EXPECT_EQ(c.core("n1").queue_broadcast(std::string(256, 'n'), bytes("x"), id, c.now()).code, Errc::invalid);
  EXPECT_EQ(c.core("n1").queue_broadcast(std::string("a\0b", 3), bytes("x"), id, c.now()).code, Errc::invalid);
}

// ---- pull-style (delegate) broadcasts ---------------------------------------------------------

TEST(AppDelegateBroadcast, BudgetIsRespectedAndMessagesArrive) {
  Cluster c;
  auto d = std::make_shared<TestDelegate>();
  std::deque<Bytes> pending;
  for (int i = 0; i < 40; ++i) pending.push_back(Bytes(100 + static_cast<size_t>(i), static_cast<uint8_t>(i)));
  const std::set<Bytes> all(pending.begin(), pending.end());
  d->on_get_broadcasts = [&](size_t overhead, size_t limit) {
    std::vector<Bytes> out;
    size_t used = 0;
    while (!pending.empty() && used + overhead + pending.front().size() <= limit) {
      used += overhead + pending.front().size();
      out.push_back(pending.front());
      pending.pop_front();
    }
    return out;
  };
  start(c, 2, [&](Config& cfg, int i) {
    if (i == 1) cfg.delegate = d;
  });
  c.run_for(10s);
  EXPECT_TRUE(pending.empty());
  ASSERT_FALSE(d->broadcast_calls.empty());
  for (const auto& [overhead, limit] : d->broadcast_calls) {
    EXPECT_EQ(overhead, 4u + 5u);  // compound part + UserMsg wrapping (test codec)
    EXPECT_LE(limit, 1400u);
  }
  for (const auto& p : c.sent())
    if (p.from == addr_of(1)) {
      EXPECT_LE(p.data.size(), 1400u);
    }
  std::set<Bytes> got;
  for (const auto& m : c.notifications_of<UserMessage>("n2")) got.insert(m.payload);
  EXPECT_EQ(got, all);
}

TEST(AppDelegateBroadcast, OversizedAnswersAreDroppedNotSent) {
  Cluster c;
  auto d = std::make_shared<TestDelegate>();
  d->on_get_broadcasts = [](size_t, size_t limit) { return std::vector<Bytes>{Bytes(limit, 'x'), bytes("small")}; };
  start(c, 2, [&](Config& cfg, int i) {
    if (i == 1) cfg.delegate = d;
  });
  c.run_for(3s);
  for (const auto& p : c.sent())
    if (p.from == addr_of(1)) {
      EXPECT_LE(p.data.size(), 1400u);
    }
  EXPECT_GT(c.core("n1").metrics().counter("memberlist.bad_messages", {{"reason", "delegate_broadcast_too_large"}}), 0);
  bool small = false;
  for (const auto& m : c.notifications_of<UserMessage>("n2")) {
    EXPECT_EQ(str(m.payload), "small");
    small = true;
  }
  EXPECT_TRUE(small);
}

// A join fills the membership queue with alive news for seconds; an application broadcast
// queued meanwhile still leaves in the next datagram (it may take half of it), and the
// membership news fills the rest.
TEST(AppBroadcast, NotStarvedByMembershipNews) {
  auto codec = std::make_shared<TestCodec>();
  Instant now{1000s};
  Config cfg = test_config("a", 1);
  cfg.probe_interval = 0s;  // only gossip sends
  cfg.push_pull_interval = 0s;
  Core a(cfg, codec, now);
  drain(a, *codec);
  for (int i = 2; i < 250; ++i)  // far more news than one datagram holds
    a.handle_packet(addr_of(200), codec->encode(Alive{1, "p" + std::to_string(i), addr_of(i), {}, cfg.vsn()}), now);
  drain(a, *codec);
  uint64_t id = 0;
  ASSERT_TRUE(a.queue_broadcast("", bytes("urgent"), id, now).ok());
  std::vector<Decoded> sent;
  while (sent.empty()) {
    auto t = a.poll_timeout();
    ASSERT_TRUE(t);
    now = *t;
    a.handle_timeout(now);
    sent = drain(a, *codec);
  }
  bool user = false;
  size_t alive = 0;
  for (const auto& m : sent.front().msgs) {
    user = user || std::holds_alternative<UserBroadcast>(m);
    alive += std::holds_alternative<Alive>(m) ? 1 : 0;
  }
  EXPECT_TRUE(user) << "the first gossip datagram carries no application broadcast";
  EXPECT_GT(alive, 5u) << "membership news lost its share";
}

// With nothing queued, a node has no gossip timer at all (an idle cluster is not woken every
// gossip interval); queuing news re-arms it within one interval.
TEST(AppBroadcast, IdleNodeHasNoGossipTimerUntilNewsIsQueued) {
  auto codec = std::make_shared<TestCodec>();
  const Instant start{1000s};
  Instant now = start;
  Config cfg = test_config("a", 1);
  cfg.probe_interval = 0s;  // only gossip (and the queue check) keep timers
  cfg.push_pull_interval = 0s;
  Core a(cfg, codec, now);
  // A peer, so that the news of the start (our alive, b's alive) is sent and used up.
  a.handle_packet(addr_of(2), codec->encode(Alive{1, "b", addr_of(2), {}, cfg.vsn()}), now);
  drain(a, *codec);
  while (auto t = a.poll_timeout()) {
    if (*t > start + 2s) break;
    now = *t;
    a.handle_timeout(now);
    drain(a, *codec);
  }
  auto idle = a.poll_timeout();
  EXPECT_TRUE(!idle || *idle - now > 10 * cfg.gossip_interval) << "an idle node still has a gossip timer";
  uint64_t id = 0;
  ASSERT_TRUE(a.queue_broadcast("", bytes("news"), id, now).ok());
  auto busy = a.poll_timeout();
  ASSERT_TRUE(busy);
  EXPECT_GT(*busy, now);
  EXPECT_LE(*busy - now, cfg.gossip_interval);
}

TEST(AppDelegateBroadcast, SystemMessagesGoFirst) {
  Cluster c;
  auto d = std::make_shared<TestDelegate>();
  // A greedy delegate that always fills what it is given.
  d->on_get_broadcasts = [](size_t overhead, size_t limit) {
    return limit > overhead + 10 ? std::vector<Bytes>{Bytes(limit - overhead, 'g')} : std::vector<Bytes>{};
  };
  start(c, 5, [&](Config& cfg, int i) {
    if (i == 1) cfg.delegate = d;
  });
  // Membership still converges: news is taken before the delegate's share.
  EXPECT_TRUE(c.run_until_pred([&] { return converged(c, 5); }, 10s));
}

}  // namespace
}  // namespace memberlist::test
