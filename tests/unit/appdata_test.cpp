// Application data on the core, end to end in virtual time: metadata and its updates, user
// messages, push/pull state, the merge / alive / conflict / ping hooks, and hooks that call
// back into the core.
#include <gtest/gtest.h>

#include "app_cluster.h"
#include "harness.h"
#include "test_delegate.h"

namespace memberlist::test {
namespace {

using namespace core;

std::optional<NodeInfo> member(Cluster& c, const std::string& observer, const std::string& name) {
  for (const auto& m : c.core(observer).members())
    if (m.name == name) return m;
  return std::nullopt;
}

// ---- metadata ---------------------------------------------------------------------------

TEST(AppMeta, MetaAtStartFromConfigAndDelegateIsSeenByAll) {
  Cluster c;
  auto d = std::make_shared<TestDelegate>();
  d->on_node_meta = [](size_t) { return bytes("from-delegate"); };
  start(c, 4, [&](Config& cfg, int i) {
    cfg.meta = bytes("cfg-" + nm(i));
    if (i == 2) cfg.delegate = d;
  });
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 4); }, 10s));
  EXPECT_EQ(d->meta_limits, std::vector<size_t>{512});  // asked once, with meta_max_size
  EXPECT_TRUE(c.core("n2").start_status().ok());
  for (int o = 1; o <= 4; ++o) {
    for (int i = 1; i <= 4; ++i) {
      auto m = member(c, nm(o), nm(i));
      ASSERT_TRUE(m) << nm(o) << " " << nm(i);
      EXPECT_EQ(str(m->meta), i == 2 ? "from-delegate" : "cfg-" + nm(i)) << nm(o);
    }
  }
  // Join events carry the metadata.
  for (const auto& e : c.events("n1"))
    if (e.node.name == "n2") {
      EXPECT_EQ(str(e.node.meta), "from-delegate");
    }
}

TEST(AppMeta, UpdateReachesEveryNodeWithUpdateEventsAndTheTokenFinishes) {
  Cluster c;
  start(c, 5);
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 5); }, 10s));
  const uint32_t inc_before = c.core("n3").local_node().incarnation;
  uint64_t token = 0;
  ASSERT_TRUE(c.core("n3").update_meta(bytes("v2"), c.now(), &token).ok());
  EXPECT_NE(token, 0u);
  EXPECT_FALSE(c.core("n3").broadcast_finished(token));
  EXPECT_EQ(c.core("n3").local_node().incarnation, inc_before + 1);
  EXPECT_EQ(str(c.core("n3").local_node().meta), "v2");
  auto all_see_v2 = [&] {
    for (int o = 1; o <= 5; ++o) {
      auto m = member(c, nm(o), "n3");
      if (!m || str(m->meta) != "v2") return false;
    }
    return true;
  };
  EXPECT_TRUE(c.run_until_pred(all_see_v2, 5s));
  EXPECT_TRUE(c.run_until_pred([&] { return c.core("n3").broadcast_finished(token); }, 10s));
  for (int o = 1; o <= 5; ++o) {
    int updates = 0;
    for (const auto& e : c.events(nm(o))) {
      if (e.type != EventType::Update || e.node.name != "n3") continue;
      updates++;
      EXPECT_EQ(str(e.node.meta), "v2");
      EXPECT_EQ(e.node.state, NodeState::Alive);
      EXPECT_EQ(e.node.incarnation, inc_before + 1);
    }
    EXPECT_EQ(updates, 1) << nm(o);  // n3 itself included, as the reference
  }
  EXPECT_FALSE(c.core("n3").broadcast_finished(token + 1));  // unknown tokens are not finished
  EXPECT_FALSE(c.core("n3").broadcast_finished(0));
}

TEST(AppMeta, UpdateNodeAsksTheDelegate) {
  Cluster c;
  auto d = std::make_shared<TestDelegate>();
  std::string current = "a";
  d->on_node_meta = [&](size_t) { return bytes(current); };
  start(c, 2, [&](Config& cfg, int i) {
    if (i == 1) cfg.delegate = d;
  });
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 2); }, 5s));
  current = "b";
  uint64_t token = 0;
  ASSERT_TRUE(c.core("n1").update_node(c.now(), &token).ok());
  EXPECT_EQ(d->meta_limits.size(), 2u);
  EXPECT_TRUE(c.run_until_pred([&] { return str(member(c, "n2", "n1")->meta) == "b"; }, 5s));
  EXPECT_TRUE(c.run_until_pred([&] { return c.core("n1").broadcast_finished(token); }, 10s));
}

TEST(AppMeta, AloneTheUpdateIsFinishedAtOnce) {
  Cluster c;
  c.add(test_config("n1", 1));
  uint64_t token = 0;
  ASSERT_TRUE(c.core("n1").update_meta(bytes("x"), c.now(), &token).ok());
  EXPECT_TRUE(c.core("n1").broadcast_finished(token));
}

TEST(AppMeta, OversizedMetaIsRefusedAndChangesNothing) {
  Cluster c;
  c.add(test_config("n1", 1));
  c.run_for(1s);
  c.events("n1").clear();
  const NodeInfo before = c.core("n1").local_node();
  uint64_t token = 0;
  Status s = c.core("n1").update_meta(Bytes(513, 'm'), c.now(), &token);
  EXPECT_EQ(s.code, Errc::too_large);
  EXPECT_NE(s.message.find("meta_max_size"), std::string::npos) << s.message;
  EXPECT_EQ(token, 0u);
  EXPECT_EQ(c.core("n1").local_node().incarnation, before.incarnation);
  EXPECT_EQ(c.core("n1").local_node().meta, before.meta);
  c.run_for(10ms);
  EXPECT_TRUE(c.events("n1").empty());
  // Exactly the limit is fine.
  EXPECT_TRUE(c.core("n1").update_meta(Bytes(512, 'm'), c.now()).ok());
}

TEST(AppMeta, LimitIsConfigurableButMustFitADatagram) {
  Cluster c;
  Config cfg = test_config("n1", 1);
  cfg.meta_max_size = 4000;
  c.add(cfg);
  EXPECT_TRUE(c.core("n1").update_meta(Bytes(1000, 'm'), c.now()).ok());
  Status s = c.core("n1").update_meta(Bytes(2000, 'm'), c.now());
  EXPECT_EQ(s.code, Errc::too_large);
  EXPECT_NE(s.message.find("udp_buffer_size"), std::string::npos) << s.message;
  EXPECT_EQ(c.core("n1").local_node().meta.size(), 1000u);
}

TEST(AppMeta, DelegateMetaTooLargeAtStartIsReportedNotFatal) {
  Cluster c;
  auto d = std::make_shared<TestDelegate>();
  d->on_node_meta = [](size_t limit) { return Bytes(limit + 1, 'x'); };
  Config cfg = test_config("n1", 1);
  cfg.meta = bytes("fallback");
  cfg.delegate = d;
  c.add(cfg);
  EXPECT_EQ(c.core("n1").start_status().code, Errc::too_large);
  EXPECT_EQ(str(c.core("n1").local_node().meta), "fallback");
  EXPECT_EQ(c.core("n1").num_members(), 1u);
  EXPECT_TRUE(c.logged("n1", "Refusing the local node metadata"));
}

// ---- user messages -----------------------------------------------------------------------

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& v : b) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(x >> 24);
  }
  return b;
}

TEST(AppUserMsg, BestEffortArrivesIntact) {
  Cluster c;
  start(c, 2);
  c.run_for(1s);
  const Bytes payload = pattern(1000, 1);
  ASSERT_TRUE(c.core("n1").send_best_effort(addr_of(2), payload, c.now()).ok());
  ASSERT_TRUE(c.core("n1").send_best_effort("n2", bytes("by name"), c.now()).ok());
  c.run_for(10ms);
  auto got = c.notifications_of<UserMessage>("n2");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, payload);
  EXPECT_EQ(got[0].from, addr_of(1));
  EXPECT_EQ(str(got[1].payload), "by name");
  EXPECT_TRUE(c.notifications_of<UserMessage>("n1").empty());
  // One datagram holding just the message: nothing piggybacked.
  bool found = false;
  for (const auto& p : c.sent())
    if (p.from == addr_of(1) && p.data.size() == c.codec().encode(UserMsg{payload}).size()) found = true;
  EXPECT_TRUE(found);
}

TEST(AppUserMsg, BestEffortSizeLimitAndUnknownMember) {
  Cluster c;
  start(c, 2);
  c.run_for(1s);
  // The test codec encodes a UserMsg as 5 bytes + payload; the limit is on the datagram.
  const size_t max_payload = Config{}.max_best_effort_size - 5;
  EXPECT_TRUE(c.core("n1").send_best_effort(addr_of(2), Bytes(max_payload, 1), c.now()).ok());
  Status s = c.core("n1").send_best_effort(addr_of(2), Bytes(max_payload + 1, 1), c.now());
  EXPECT_EQ(s.code, Errc::too_large);
  EXPECT_NE(s.message.find("send_reliable"), std::string::npos) << s.message;
  EXPECT_EQ(c.core("n1").send_best_effort("nobody", bytes("x"), c.now()).code, Errc::not_found);
  c.run_for(10ms);
  auto got = c.notifications_of<UserMessage>("n2");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload.size(), max_payload);
}

TEST(AppUserMsg, EmptyMessagesAreNotReported) {
  Cluster c;
  start(c, 2);
  c.run_for(1s);
  ASSERT_TRUE(c.core("n1").send_best_effort(addr_of(2), {}, c.now()).ok());
  Status st;
  ASSERT_NE(c.core("n1").send_reliable(addr_of(2), {}, c.now(), st), 0u);
  c.run_for(10ms);
  EXPECT_TRUE(c.notifications_of<UserMessage>("n2").empty());
}

TEST(AppUserMsg, ReliableOneMebibyteArrivesIntact) {
  Cluster c;
  start(c, 2);
  c.run_for(1s);
  const Bytes payload = pattern(1u << 20, 7);
  Status st;
  uint64_t id = c.core("n1").send_reliable(addr_of(2), payload, c.now(), st);
  ASSERT_TRUE(st.ok()) << st.message;
  ASSERT_NE(id, 0u);
  c.run_for(10ms);
  auto r = c.stream_result("n1", id);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok()) << r->message;
  auto got = c.notifications_of<UserMessage>("n2");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].payload == payload);
  EXPECT_EQ(got[0].from, addr_of(1));
  // By name too.
  uint64_t id2 = c.core("n2").send_reliable("n1", bytes("back"), c.now(), st);
  ASSERT_TRUE(st.ok());
  c.run_for(10ms);
  ASSERT_TRUE(c.stream_result("n2", id2));
  ASSERT_EQ(c.notifications_of<UserMessage>("n1").size(), 1u);
  EXPECT_EQ(str(c.notifications_of<UserMessage>("n1")[0].payload), "back");
}

TEST(AppUserMsg, ReliableLimitsBothWays) {
  EXPECT_EQ(Config{}.max_user_msg_size, 20u << 20);
  Cluster c;
  start(c, 2, [](Config& cfg, int i) {
    cfg.max_user_msg_size = i == 1 ? 4096 : 1024;
  });
  c.run_for(1s);
  Status st;
  EXPECT_EQ(c.core("n1").send_reliable(addr_of(2), Bytes(4097, 1), c.now(), st), 0u);
  EXPECT_EQ(st.code, Errc::too_large);
  EXPECT_NE(st.message.find("max_user_msg_size"), std::string::npos);
  // n1 may send 2000 bytes, but n2 accepts at most 1024: dropped and counted there.
  ASSERT_NE(c.core("n1").send_reliable(addr_of(2), Bytes(2000, 1), c.now(), st), 0u);
  c.run_for(10ms);
  EXPECT_TRUE(c.notifications_of<UserMessage>("n2").empty());
  EXPECT_EQ(c.core("n2").metrics().counter("memberlist.bad_messages", {{"reason", "user_msg_too_large"}}), 1);
  // Unknown member, unreachable address.
  EXPECT_EQ(c.core("n1").send_reliable("nobody", bytes("x"), c.now(), st), 0u);
  EXPECT_EQ(st.code, Errc::not_found);
  uint64_t id = c.core("n1").send_reliable(addr_of(9), bytes("x"), c.now(), st);
  c.run_for(10ms);
  ASSERT_TRUE(c.stream_result("n1", id));
  EXPECT_EQ(c.stream_result("n1", id)->code, Errc::io);
}

// ---- push/pull state -----------------------------------------------------------------------

TEST(AppState, ExchangedOnJoinAndPeriodicallyWithTheRightFlag) {
  Cluster c;
  auto d1 = std::make_shared<TestDelegate>();
  auto d2 = std::make_shared<TestDelegate>();
  d1->on_local_state = [](bool join) { return bytes(join ? "n1-join" : "n1-sync"); };
  d2->on_local_state = [](bool join) { return bytes(join ? "n2-join" : "n2-sync"); };
  start(c, 2, [&](Config& cfg, int i) {
    cfg.delegate = i == 1 ? d1 : d2;
    cfg.probe_interval = 0s;
    cfg.gossip_interval = 0s;
  });
  c.run_for(10ms);
  // The join: both sides send their state with join=true and merge the other's.
  ASSERT_EQ(d2->local_state_calls, std::vector<bool>{true});
  ASSERT_EQ(d1->local_state_calls, std::vector<bool>{true});
  EXPECT_EQ(d1->merged, (std::vector<std::pair<std::string, bool>>{{"n2-join", true}}));
  EXPECT_EQ(d2->merged, (std::vector<std::pair<std::string, bool>>{{"n1-join", true}}));
  // Periodic anti-entropy (every 15 s): join=false, both ways.
  c.run_for(40s);
  ASSERT_GE(d1->merged.size(), 3u);
  ASSERT_GE(d2->merged.size(), 3u);
  for (size_t i = 1; i < d1->merged.size(); ++i) EXPECT_EQ(d1->merged[i], (std::pair<std::string, bool>{"n2-sync", false}));
  for (size_t i = 1; i < d2->merged.size(); ++i) EXPECT_EQ(d2->merged[i], (std::pair<std::string, bool>{"n1-sync", false}));
  // Merges of membership happen without the merge hook outside joins.
  EXPECT_EQ(d1->merge_calls.size(), 1u);
  EXPECT_EQ(d2->merge_calls.size(), 1u);
}

TEST(AppState, EmptyRemoteStateIsNotMerged) {
  Cluster c;
  auto d1 = std::make_shared<TestDelegate>();
  start(c, 2, [&](Config& cfg, int i) {
    if (i == 1) cfg.delegate = d1;
  });
  c.run_for(10ms);
  EXPECT_EQ(d1->local_state_calls.size(), 1u);
  EXPECT_TRUE(d1->merged.empty());
}

// ---- merge hook ------------------------------------------------------------------------------

TEST(AppMerge, ResponderVetoFailsTheJoinAndChangesNothingOnEitherSide) {
  Cluster c;
  auto d1 = std::make_shared<TestDelegate>();
  d1->on_notify_merge = [](const std::vector<NodeInfo>& peers) {
    for (const auto& p : peers)
      if (p.name == "n2") return Status::error(Errc::rejected, "n2 is not in my cluster");
    return Status::success();
  };
  Config a = test_config("n1", 1);
  a.delegate = d1;
  Config b = test_config("n2", 2);
  b.meta = bytes("m2");
  c.add(a);
  c.add(b);
  c.run_for(1ms);
  c.events("n1").clear();
  c.events("n2").clear();
  uint64_t id = c.join("n2", "n1");
  c.run_for(10ms);
  auto r = c.stream_result("n2", id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, Errc::rejected);
  EXPECT_NE(r->message.find("n2 is not in my cluster"), std::string::npos) << r->message;
  // The hook saw n2, with its metadata.
  ASSERT_EQ(d1->merge_calls.size(), 1u);
  ASSERT_EQ(d1->merge_calls[0].size(), 1u);
  EXPECT_EQ(str(d1->merge_calls[0][0].meta), "m2");
  c.run_for(10s);
  EXPECT_EQ(c.core("n1").all_nodes().size(), 1u);
  EXPECT_EQ(c.core("n2").all_nodes().size(), 1u);
  EXPECT_TRUE(c.events("n1").empty());
  EXPECT_TRUE(c.events("n2").empty());
}

TEST(AppMerge, JoinerVetoFailsTheJoinAndTheJoinerMergesNothing) {
  Cluster c;
  auto d2 = std::make_shared<TestDelegate>();
  d2->on_notify_merge = [](const std::vector<NodeInfo>&) { return Status::error(Errc::rejected, "wrong cluster"); };
  Config a = test_config("n1", 1);
  Config b = test_config("n2", 2);
  b.delegate = d2;
  b.probe_interval = 0s;
  b.gossip_interval = 0s;
  b.push_pull_interval = 0s;
  a.probe_interval = 0s;
  a.gossip_interval = 0s;
  a.push_pull_interval = 0s;
  c.add(a);
  c.add(b);
  uint64_t id = c.join("n2", "n1");
  c.run_for(10ms);
  auto r = c.stream_result("n2", id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, Errc::rejected);
  EXPECT_NE(r->message.find("wrong cluster"), std::string::npos) << r->message;
  EXPECT_EQ(c.core("n2").all_nodes().size(), 1u);
  EXPECT_TRUE(d2->merged.empty());
}

// ---- alive hook --------------------------------------------------------------------------------

TEST(AppAlive, VetoKeepsANodeOut) {
  Cluster c;
  std::vector<std::shared_ptr<TestDelegate>> ds;
  start(c, 4, [&](Config& cfg, int i) {
    if (i == 4) return;
    auto d = std::make_shared<TestDelegate>();
    d->on_notify_alive = [](const NodeInfo& n) {
      return n.name == "n4" ? Status::error(Errc::rejected, "no n4 here") : Status::success();
    };
    ds.push_back(d);
    cfg.delegate = d;
  });
  for (int step = 0; step < 40; ++step) {
    c.run_for(500ms);
    for (int i = 1; i <= 3; ++i) {
      auto all = c.core(nm(i)).all_nodes();
      ASSERT_TRUE(std::none_of(all.begin(), all.end(), [](auto& n) { return n.name == "n4"; })) << nm(i);
    }
  }
  EXPECT_EQ(c.alive_view("n1"), (std::set<std::string>{"n1", "n2", "n3"}));
  // n1 merged n4's join and asked its hook; the others heard of n4 only if n4 gossiped or
  // pushed to them directly (nobody forwards rejected news).
  EXPECT_GT(std::count(ds[0]->alive_calls.begin(), ds[0]->alive_calls.end(), "n4"), 0);
  // Never asked about the local node.
  EXPECT_EQ(std::count(ds[0]->alive_calls.begin(), ds[0]->alive_calls.end(), "n1"), 0);
  EXPECT_GT(c.core("n1").metrics().counter("memberlist.alive.rejected"), 0);
}

TEST(AppAlive, HookSeesOnlyNewsNotDuplicates) {
  Cluster c;
  auto d = std::make_shared<TestDelegate>();
  start(c, 3, [&](Config& cfg, int i) {
    if (i == 1) cfg.delegate = d;
  });
  c.run_for(20s);
  ASSERT_TRUE(converged(c, 3));
  // One alive per node, however often it was gossiped or pushed.
  EXPECT_EQ(std::count(d->alive_calls.begin(), d->alive_calls.end(), "n2"), 1);
  EXPECT_EQ(std::count(d->alive_calls.begin(), d->alive_calls.end(), "n3"), 1);
  // A newer incarnation is news again.
  ASSERT_TRUE(c.core("n2").update_meta(bytes("new"), c.now()).ok());
  c.run_for(2s);
  EXPECT_EQ(std::count(d->alive_calls.begin(), d->alive_calls.end(), "n2"), 2);
}

// ---- conflict ----------------------------------------------------------------------------------

TEST(AppConflict, SameNameOtherAddressIsReported) {
  Cluster c;
  start(c, 2);
  c.run_for(1s);
  const NodeInfo n2 = *member(c, "n1", "n2");
  Alive impostor{n2.incarnation + 5, "n2", addr_of(9), bytes("evil"), n2.vsn};
  c.core("n1").handle_packet(addr_of(9), c.codec().encode(impostor), c.now());
  c.run_for(1ms);
  auto got = c.notifications_of<Conflict>("n1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].existing.name, "n2");
  EXPECT_EQ(got[0].existing.addr, addr_of(2));
  EXPECT_EQ(got[0].other.addr, addr_of(9));
  EXPECT_EQ(got[0].other.incarnation, n2.incarnation + 5);
  EXPECT_EQ(str(got[0].other.meta), "evil");
  EXPECT_EQ(member(c, "n1", "n2")->addr, addr_of(2));  // ignored
  EXPECT_EQ(c.core("n1").stats().conflicts, 1u);
}

// ---- ping hook ----------------------------------------------------------------------------------

TEST(AppPing, AckPayloadAndRttReachTheProber) {
  Cluster c;
  c.latency = 3ms;
  auto d1 = std::make_shared<TestDelegate>();
  auto d2 = std::make_shared<TestDelegate>();
  d2->ack = bytes("load=7");
  start(c, 2, [&](Config& cfg, int i) { cfg.delegate = i == 1 ? d1 : d2; });
  c.run_for(5s);
  auto got = c.notifications_of<PingComplete>("n1");
  ASSERT_GE(got.size(), 3u);
  for (const auto& p : got) {
    EXPECT_EQ(p.node.name, "n2");
    EXPECT_EQ(p.rtt, Duration(6ms));  // 3 ms each way in virtual time
    EXPECT_EQ(str(p.payload), "load=7");
  }
  EXPECT_GE(d2->ack_calls, static_cast<int>(got.size()));
  // n1's delegate attaches nothing to its acks.
  ASSERT_FALSE(c.notifications_of<PingComplete>("n2").empty());
  for (const auto& p : c.notifications_of<PingComplete>("n2")) EXPECT_TRUE(p.payload.empty());
}

TEST(AppPing, NoDelegateNoPingNotifications) {
  Cluster c;
  start(c, 2);
  c.run_for(5s);
  EXPECT_GE(c.core("n1").stats().probes, 3u);
  EXPECT_EQ(c.core("n1").stats().probe_failures, 0u);
  EXPECT_TRUE(c.notifications_of<PingComplete>("n1").empty());
}

TEST(AppPing, IndirectAcksDoNotReportARtt) {
  Cluster c;
  start(c, 3, [](Config& cfg, int) {
    cfg.disable_tcp_pings = true;
    cfg.delegate = std::make_shared<TestDelegate>();
  });
  c.run_for(3s);
  c.notifications("n1").clear();
  // n1's datagrams to n2 are lost: n1 probes n2 only through n3.
  c.drop_packet = [](const Address& f, const Address& t, const Bytes&) { return f == addr_of(1) && t == addr_of(2); };
  c.run_for(20s);
  bool saw_n3 = false;
  for (const auto& p : c.notifications_of<PingComplete>("n1")) {
    EXPECT_NE(p.node.name, "n2");
    saw_n3 |= p.node.name == "n3";
  }
  EXPECT_TRUE(saw_n3);
  EXPECT_EQ(c.alive_view("n1"), (std::set<std::string>{"n1", "n2", "n3"}));
}

// ---- hooks calling back into the core -------------------------------------------------------

TEST(AppReentrancy, HooksMayQueryAndQueueFromInside) {
  Cluster c;
  auto d1 = std::make_shared<TestDelegate>();
  size_t members_seen = 0;
  int queued_from_hook = 0;
  std::vector<Status> refused;
  d1->on_get_broadcasts = [&](size_t, size_t) {
    members_seen = std::max(members_seen, d1->core->members().size());
    if (queued_from_hook < 3) {
      uint64_t id = 0;
      if (d1->core->queue_broadcast("", bytes("from get_broadcasts " + std::to_string(queued_from_hook)), id, Instant{}).ok())
        queued_from_hook++;
      Status st;
      (void)d1->core->send_reliable("n2", bytes("reliable from hook"), Instant{}, st);
    }
    return std::vector<Bytes>{};
  };
  d1->on_notify_alive = [&](const NodeInfo& n) {
    (void)d1->core->members();
    (void)d1->core->stats();
    uint64_t id = 0;
    (void)d1->core->queue_broadcast("", bytes("welcome " + n.name), id, Instant{});
    refused.push_back(d1->core->update_meta(bytes("no"), Instant{}));
    refused.push_back(d1->core->leave(Instant{}));
    return Status::success();
  };
  start(c, 3, [&](Config& cfg, int i) {
    if (i == 1) cfg.delegate = d1;
  });
  d1->core = &c.core("n1");
  ASSERT_TRUE(c.run_until_pred([&] { return converged(c, 3); }, 10s));
  c.run_for(5s);
  EXPECT_EQ(members_seen, 3u);
  EXPECT_EQ(queued_from_hook, 3);
  ASSERT_FALSE(refused.empty());
  for (const auto& s : refused) EXPECT_EQ(s.code, Errc::state);
  EXPECT_FALSE(c.core("n1").has_left());
  for (const std::string o : {"n2", "n3"}) {
    std::set<std::string> got;
    for (const auto& b : c.notifications_of<BroadcastReceived>(o)) got.insert(str(b.payload));
    EXPECT_TRUE(got.count("from get_broadcasts 0") && got.count("from get_broadcasts 2")) << o;
    EXPECT_TRUE(got.count("welcome n2") && got.count("welcome n3")) << o;
  }
  EXPECT_GE(c.notifications_of<UserMessage>("n2").size(), 1u);
}

}  // namespace
}  // namespace memberlist::test
