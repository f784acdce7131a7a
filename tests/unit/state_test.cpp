// The membership state machine driven through handle_packet / handle_stream of one Core
// (reference §3.8, state_test.go AliveNode_* / SuspectNode_* / DeadNode_* / MergeState).
#include <gtest/gtest.h>

#include <random>

#include "harness.h"

namespace memberlist::test {
namespace {

using namespace core;

Bytes b(const std::string& s) { return Bytes(s.begin(), s.end()); }
const Vsn kVsn = Config{}.vsn();

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override { make(test_config("a", 1)); }

  void make(Config cfg) {
    cfg.log = [this](LogLevel, std::string_view l) { logs.emplace_back(l); };
    a = std::make_unique<Core>(std::move(cfg), codec, now);
  }
  void feed(const Message& m, Address from = addr_of(9)) { a->handle_packet(from, codec->encode(m), now); }
  std::vector<Event> events() {
    std::vector<Event> out;
    while (auto e = a->poll_event()) out.push_back(*e);
    return out;
  }
  std::optional<NodeInfo> node(const std::string& name) {
    for (auto& n : a->all_nodes())
      if (n.name == name) return n;
    return std::nullopt;
  }
  NodeState state(const std::string& name) { return node(name).value().state; }
  bool logged(const std::string& needle) {
    return std::any_of(logs.begin(), logs.end(), [&](auto& l) { return l.find(needle) != std::string::npos; });
  }
  static Alive alive(const std::string& name, int index, uint32_t inc, const std::string& meta = "") {
    return Alive{inc, name, addr_of(index), b(meta), kVsn};
  }

  std::shared_ptr<TestCodec> codec = std::make_shared<TestCodec>();
  Instant now{1000s};
  std::vector<std::string> logs;
  std::unique_ptr<Core> a;
};

TEST_F(StateTest, BootstrapSelf) {
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::Join);
  EXPECT_EQ(ev[0].node.name, "a");
  NodeInfo me = a->local_node();
  EXPECT_EQ(me.incarnation, 1u);
  EXPECT_EQ(me.state, NodeState::Alive);
  EXPECT_EQ(me.addr, addr_of(1));
  EXPECT_EQ(me.vsn, kVsn);
  EXPECT_EQ(a->num_members(), 1u);
  EXPECT_EQ(a->stats().broadcast_queue, 1u);  // our own alive
}

TEST_F(StateTest, AliveNewNode) {
  events();
  feed(alive("b", 2, 1, "meta-b"));
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::Join);
  EXPECT_EQ(ev[0].node.name, "b");
  EXPECT_EQ(ev[0].node.meta, b("meta-b"));
  EXPECT_EQ(ev[0].node.addr, addr_of(2));
  EXPECT_EQ(a->num_members(), 2u);
  EXPECT_EQ(a->stats().alive, 2u);
  EXPECT_EQ(a->stats().broadcast_queue, 2u);  // re-gossiped
}

TEST_F(StateTest, NewsAboutANodeReplacesOlderNews) {
  feed(alive("b", 2, 1));
  EXPECT_EQ(a->stats().broadcast_queue, 2u);
  feed(Suspect{1, "b", "c"});
  EXPECT_EQ(a->stats().broadcast_queue, 2u);
  feed(Dead{1, "b", "c"});
  EXPECT_EQ(a->stats().broadcast_queue, 2u);
  // What goes out about b is the latest: dead.
  feed(Ping{1, "a", addr_of(5), "x"});
  int about_b = 0;
  for (auto& d : drain(*a, *codec))
    for (auto& m : d.msgs) {
      EXPECT_FALSE(std::holds_alternative<Suspect>(m));
      if (auto* dead = std::get_if<Dead>(&m)) about_b += dead->node == "b";
      if (auto* al = std::get_if<Alive>(&m)) {
        EXPECT_NE(al->node, "b");
      }
    }
  EXPECT_EQ(about_b, 1);
}

TEST_F(StateTest, CompoundsAreSplitAtPackMaxParts) {
  codec = std::make_shared<TestCodec>(3);
  Config cfg = test_config("a", 1);
  cfg.retransmit_mult = 10;
  make(cfg);
  for (int i = 0; i < 10; ++i) feed(alive("n" + std::to_string(i), 10 + i, 1));
  drain(*a, *codec);
  feed(Ping{7, "a", addr_of(5), "x"});  // ack + 11 broadcasts = 12 parts
  auto out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 4u);
  size_t total = 0;
  for (auto& d : out) {
    EXPECT_LE(d.msgs.size(), 3u);
    EXPECT_EQ(d.to, addr_of(5));
    total += d.msgs.size();
  }
  EXPECT_EQ(total, 12u);
  EXPECT_TRUE(std::holds_alternative<Ack>(out[0].msgs[0]));
}

TEST_F(StateTest, AliveIdempotentAndOld) {
  feed(alive("b", 2, 2));
  events();
  feed(alive("b", 2, 2));
  feed(alive("b", 2, 2, "changed-but-same-incarnation"));
  feed(alive("b", 2, 1, "older"));
  EXPECT_TRUE(events().empty());
  EXPECT_EQ(node("b")->incarnation, 2u);
  EXPECT_TRUE(node("b")->meta.empty());
}

TEST_F(StateTest, AliveChangeMeta) {
  feed(alive("b", 2, 1, "one"));
  events();
  feed(alive("b", 2, 2, "two"));
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::Update);
  EXPECT_EQ(ev[0].node.meta, b("two"));
  EXPECT_EQ(node("b")->meta, b("two"));
}

TEST_F(StateTest, AliveAfterSuspectFiresNothing) {
  feed(alive("b", 2, 1));
  feed(Suspect{1, "b", "c"});
  EXPECT_EQ(state("b"), NodeState::Suspect);
  events();
  feed(alive("b", 2, 2));
  EXPECT_EQ(state("b"), NodeState::Alive);
  EXPECT_TRUE(events().empty());
}

TEST_F(StateTest, AliveAboutUsSameIsIgnored) {
  feed(Alive{1, "a", addr_of(1), {}, kVsn});
  EXPECT_EQ(a->local_node().incarnation, 1u);
  EXPECT_EQ(a->stats().refutes, 0u);
}

TEST_F(StateTest, AliveRefute) {
  feed(Alive{1, "a", addr_of(1), b("someone else's meta"), kVsn});
  EXPECT_EQ(a->local_node().incarnation, 2u);
  EXPECT_EQ(a->stats().refutes, 1u);
  EXPECT_EQ(a->health_score(), 1);
  EXPECT_TRUE(a->local_node().meta.empty());
  EXPECT_TRUE(logged("Refuting an alive message for 'a'"));
  // A higher accusation is beaten by one.
  feed(Alive{7, "a", addr_of(1), b("x"), kVsn});
  EXPECT_EQ(a->local_node().incarnation, 8u);
}

TEST_F(StateTest, AliveConflictIgnoredUnlessLeft) {
  feed(alive("b", 2, 1));
  events();
  feed(alive("b", 3, 2));  // same name, other address, node alive
  EXPECT_EQ(node("b")->addr, addr_of(2));
  EXPECT_EQ(node("b")->incarnation, 1u);
  EXPECT_EQ(a->stats().conflicts, 1u);
  EXPECT_TRUE(logged("Conflicting address for b. Mine: 10.0.0.2:7946 Theirs: 10.0.0.3:7946 Old state: alive"));
  EXPECT_TRUE(events().empty());

  feed(Dead{1, "b", "b"});  // graceful leave
  EXPECT_EQ(state("b"), NodeState::Left);
  events();
  feed(alive("b", 3, 1));  // a left node may come back anywhere, even at the same incarnation
  EXPECT_EQ(node("b")->addr, addr_of(3));
  EXPECT_EQ(state("b"), NodeState::Alive);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::Join);
}

TEST_F(StateTest, DeadNodeReclaimTime) {
  Config cfg = test_config("a", 1);
  cfg.dead_node_reclaim_time = 5s;
  make(cfg);
  feed(alive("b", 2, 1));
  feed(Dead{1, "b", "c"});
  EXPECT_EQ(state("b"), NodeState::Dead);
  now += 1s;
  feed(alive("b", 3, 2));
  EXPECT_EQ(node("b")->addr, addr_of(2));
  EXPECT_EQ(a->stats().conflicts, 1u);
  now += 5s;
  feed(alive("b", 3, 2));
  EXPECT_EQ(node("b")->addr, addr_of(3));
  EXPECT_EQ(state("b"), NodeState::Alive);
}

TEST_F(StateTest, DeadNodeNeverReclaimedByDefault) {
  feed(alive("b", 2, 1));
  feed(Dead{1, "b", "c"});
  now += 1000s;
  feed(alive("b", 3, 2));
  EXPECT_EQ(node("b")->addr, addr_of(2));
  EXPECT_EQ(state("b"), NodeState::Dead);
}

TEST_F(StateTest, AliveWithBadVsnIgnored) {
  Alive bad = alive("b", 2, 1);
  bad.vsn.pmin = 0;
  feed(bad);
  bad.vsn = Vsn{3, 2, 2, 0, 0, 0};  // pmin > pmax
  feed(bad);
  bad.vsn = Vsn{1, 0, 2, 0, 0, 0};
  feed(bad);
  EXPECT_FALSE(node("b"));
  EXPECT_EQ(a->stats().bad_messages, 3u);
}

// A node whose versions cannot work with ours is not stored: it would make every later
// push/pull through us fail until it was declared dead.
TEST_F(StateTest, AliveIncompatibleWithUsIgnored) {
  Alive bad = alive("b", 2, 1);
  bad.vsn = Vsn{34, 34, 34, 0, 0, 0};  // a protocol version from nowhere
  feed(bad);
  bad.vsn = Vsn{1, 5, 6, 0, 0, 0};  // current version outside its own range
  feed(bad);
  bad.vsn = kVsn;
  bad.vsn.dmin = bad.vsn.dmax = bad.vsn.dcur = 1;  // a delegate protocol we don't speak
  feed(bad);
  EXPECT_FALSE(node("b"));
  EXPECT_EQ(a->stats().bad_messages, 3u);
  EXPECT_TRUE(logged("is incompatible with ours"));
  // Push/pulls go on working (they check every known node's versions).
  PushPull remote;
  remote.nodes = {{"x", addr_of(5), {}, 1, NodeState::Alive, kVsn}};
  ASSERT_TRUE(a->handle_stream(addr_of(9), codec->encode(remote), now));
  EXPECT_TRUE(node("x"));
  // A compatible neighbour version is fine.
  Alive ok = alive("c", 3, 1);
  ok.vsn.pcur = 5;
  feed(ok);
  EXPECT_TRUE(node("c"));
}

// Incarnations beyond 2^31-1 are refused, so a refutation can never wrap to 0.
TEST_F(StateTest, IncarnationsBeyondTheBoundAreRefused) {
  const uint32_t most = (1u << 31) - 1;
  feed(alive("b", 2, 1u << 31));
  EXPECT_FALSE(node("b"));
  feed(alive("b", 2, most));
  ASSERT_TRUE(node("b"));
  EXPECT_EQ(node("b")->incarnation, most);
  const uint64_t bad_before = a->stats().bad_messages;
  feed(Dead{UINT32_MAX, "b", "c"});
  feed(Suspect{UINT32_MAX, "b", "c"});
  EXPECT_EQ(state("b"), NodeState::Alive);
  EXPECT_EQ(a->stats().bad_messages, bad_before + 2);
  // About us: a forged alive at the maximum is refused, one at the bound is refuted above it.
  feed(Alive{UINT32_MAX, "a", addr_of(1), {}, kVsn});
  EXPECT_LT(node("a")->incarnation, 100u);
  feed(Suspect{most, "a", "c"});
  EXPECT_EQ(node("a")->incarnation, most + 1);
  EXPECT_EQ(state("a"), NodeState::Alive);
}

TEST_F(StateTest, SuspectUnknownNodeIgnored) {
  feed(Suspect{1, "nobody", "c"});
  EXPECT_EQ(a->all_nodes().size(), 1u);
  EXPECT_EQ(a->stats().suspicions, 0u);
}

TEST_F(StateTest, SuspectNode) {
  feed(alive("b", 2, 1));
  events();
  feed(Suspect{1, "b", "c"});
  EXPECT_EQ(state("b"), NodeState::Suspect);
  EXPECT_EQ(a->stats().suspicions, 1u);
  EXPECT_EQ(a->stats().suspect, 1u);
  EXPECT_EQ(a->num_members(), 2u);  // suspects are still members
  EXPECT_TRUE(events().empty());    // no event for suspicion
  // Double suspicion: still one.
  feed(Suspect{1, "b", "c"});
  EXPECT_EQ(a->stats().suspicions, 1u);
}

TEST_F(StateTest, SuspectOldIncarnationIgnored) {
  feed(alive("b", 2, 5));
  feed(Suspect{4, "b", "c"});
  EXPECT_EQ(state("b"), NodeState::Alive);
}

TEST_F(StateTest, SuspectOfDeadIgnored) {
  feed(alive("b", 2, 1));
  feed(Dead{1, "b", "c"});
  feed(Suspect{1, "b", "c"});
  EXPECT_EQ(state("b"), NodeState::Dead);
}

TEST_F(StateTest, SuspectRefute) {
  feed(Suspect{5, "a", "c"});
  EXPECT_EQ(a->local_node().incarnation, 6u);
  EXPECT_EQ(a->local_node().state, NodeState::Alive);
  EXPECT_EQ(a->stats().refutes, 1u);
  EXPECT_EQ(a->health_score(), 1);
  EXPECT_TRUE(logged("Refuting a suspect message (from: c)"));
}

TEST_F(StateTest, SuspectTimeoutMarksDead) {
  feed(alive("b", 2, 1));
  feed(Suspect{1, "b", "c"});
  events();
  // Two nodes: k = 0, so the timer is min = suspicion_timeout(3, 2, 1s) = 3s.
  advance(*a, now + 3s - 1us);
  EXPECT_EQ(state("b"), NodeState::Suspect);
  advance(*a, now + 3s);
  EXPECT_EQ(state("b"), NodeState::Dead);
  EXPECT_TRUE(logged("Marking b as failed, suspect timeout reached (0 peer confirmations)"));
  auto ev = events();
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().type, EventType::Leave);
  EXPECT_EQ(ev.back().node.state, NodeState::Dead);
}

TEST_F(StateTest, DeadNode) {
  feed(alive("b", 2, 1));
  events();
  feed(Dead{1, "b", "c"});
  EXPECT_EQ(state("b"), NodeState::Dead);
  EXPECT_EQ(a->num_members(), 1u);
  EXPECT_EQ(a->stats().dead, 1u);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::Leave);
  EXPECT_EQ(ev[0].node.name, "b");
  // Double: nothing more.
  feed(Dead{1, "b", "c"});
  feed(Dead{2, "b", "c"});
  EXPECT_TRUE(events().empty());
  // Alive replay at the same incarnation does not resurrect it; a newer one does.
  feed(alive("b", 2, 1));
  EXPECT_EQ(state("b"), NodeState::Dead);
  feed(alive("b", 2, 3));
  EXPECT_EQ(state("b"), NodeState::Alive);
  ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::Join);
}

TEST_F(StateTest, DeadLeft) {
  feed(alive("b", 2, 1));
  feed(Dead{1, "b", "b"});
  EXPECT_EQ(state("b"), NodeState::Left);
  EXPECT_EQ(a->stats().left, 1u);
}

TEST_F(StateTest, DeadOldIncarnationIgnored) {
  feed(alive("b", 2, 3));
  feed(Dead{2, "b", "c"});
  EXPECT_EQ(state("b"), NodeState::Alive);
}

TEST_F(StateTest, DeadRefute) {
  feed(Dead{1, "a", "c"});
  EXPECT_EQ(a->local_node().state, NodeState::Alive);
  EXPECT_EQ(a->local_node().incarnation, 2u);
  EXPECT_EQ(a->stats().refutes, 1u);
  EXPECT_TRUE(logged("Refuting a dead message (from: c)"));
}

TEST_F(StateTest, MergeStateThroughPushPull) {
  feed(alive("b", 2, 1));
  feed(alive("c", 3, 1));
  feed(alive("d", 4, 1));
  PushPull remote;
  remote.join = true;
  remote.nodes = {
      {"b", addr_of(2), {}, 2, NodeState::Alive, kVsn},
      {"c", addr_of(3), {}, 1, NodeState::Suspect, kVsn},
      {"d", addr_of(4), {}, 1, NodeState::Dead, kVsn},  // remote dead => local suspect
      {"e", addr_of(5), b("e"), 2, NodeState::Alive, kVsn},
      {"f", addr_of(6), {}, 1, NodeState::Left, kVsn},  // unknown: nothing to do
  };
  auto reply = a->handle_stream(addr_of(9), codec->encode(remote), now);
  ASSERT_TRUE(reply);
  auto msgs = codec->decode_all(*reply);
  ASSERT_EQ(msgs.size(), 1u);
  const auto* ours = std::get_if<PushPull>(&msgs[0]);
  ASSERT_TRUE(ours);
  EXPECT_TRUE(ours->join);              // echoes the join flag
  EXPECT_EQ(ours->nodes.size(), 4u);    // our state before the merge
  EXPECT_EQ(node("b")->incarnation, 2u);
  EXPECT_EQ(state("b"), NodeState::Alive);
  EXPECT_EQ(state("c"), NodeState::Suspect);
  EXPECT_EQ(state("d"), NodeState::Suspect);
  EXPECT_EQ(state("e"), NodeState::Alive);
  EXPECT_EQ(node("e")->meta, b("e"));
  EXPECT_FALSE(node("f"));
}

TEST_F(StateTest, PushPullIncompatibleVersionMergesNothing) {
  PushPull remote;
  Vsn odd = kVsn;
  odd.dmin = odd.dmax = odd.dcur = 1;  // delegate protocol 1 only; we speak 0 only
  remote.nodes = {{"x", addr_of(5), {}, 1, NodeState::Alive, odd}};
  auto reply = a->handle_stream(addr_of(9), codec->encode(remote), now);
  EXPECT_TRUE(reply);  // we still answer with our state
  EXPECT_FALSE(node("x"));
  EXPECT_TRUE(logged("incompatible"));
}

TEST_F(StateTest, JoinResponses) {
  // An ErrResp reply.
  uint64_t id = a->join(addr_of(2), now);
  auto req = a->poll_stream();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->id, id);
  EXPECT_EQ(req->to, addr_of(2));
  EXPECT_TRUE(req->expect_reply);
  EXPECT_EQ(req->deadline, now + 1s);  // tcp_timeout of the Local preset
  auto sent = codec->decode_all(req->payload);
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<PushPull>(sent[0]));
  EXPECT_TRUE(std::get<PushPull>(sent[0]).join);
  Status s = a->handle_stream_response(id, Status::success(), codec->encode(ErrResp{"boom"}), now);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message, "remote error: boom");

  // A transport failure is returned as is.
  id = a->join(addr_of(2), now);
  s = a->handle_stream_response(id, Status::error(Errc::timeout, "i/o timeout"), {}, now);
  EXPECT_EQ(s.code, Errc::timeout);
  EXPECT_TRUE(logged("Push/Pull with 10.0.0.2:7946 failed"));

  // An incompatible remote fails the join and is not merged.
  id = a->join(addr_of(2), now);
  PushPull remote;
  Vsn odd = kVsn;
  odd.dmin = odd.dmax = odd.dcur = 1;
  remote.join = true;
  remote.nodes = {{"b", addr_of(2), {}, 1, NodeState::Alive, odd}};
  s = a->handle_stream_response(id, Status::success(), codec->encode(remote), now);
  EXPECT_EQ(s.code, Errc::rejected);
  EXPECT_NE(s.message.find("delegate protocol version (1) is incompatible"), std::string::npos) << s.message;
  EXPECT_FALSE(node("b"));

  // A compatible one merges.
  id = a->join(addr_of(2), now);
  remote.nodes[0].vsn = kVsn;
  s = a->handle_stream_response(id, Status::success(), codec->encode(remote), now);
  EXPECT_TRUE(s.ok()) << s.message;
  EXPECT_EQ(state("b"), NodeState::Alive);

  // Unknown ids and garbage replies.
  EXPECT_EQ(a->handle_stream_response(12345, Status::success(), {}, now).code, Errc::not_found);
  id = a->join(addr_of(2), now);
  Bytes junk{1, 2, 3};
  EXPECT_EQ(a->handle_stream_response(id, Status::success(), junk, now).code, Errc::protocol);
}

TEST_F(StateTest, PingIsAnsweredWithPiggyback) {
  drain(*a, *codec);
  feed(Ping{7, "a", addr_of(5), "x"});
  auto out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, addr_of(5));
  ASSERT_GE(out[0].msgs.size(), 2u);  // ack + our queued alive
  ASSERT_TRUE(std::holds_alternative<Ack>(out[0].msgs[0]));
  EXPECT_EQ(std::get<Ack>(out[0].msgs[0]).seq, 7u);
  EXPECT_TRUE(std::holds_alternative<Alive>(out[0].msgs[1]));

  feed(Ping{8, "", {}, ""}, addr_of(6));  // no source: answer the packet's sender
  out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, addr_of(6));

  feed(Ping{9, "someone-else", addr_of(5), "x"});
  EXPECT_TRUE(drain(*a, *codec).empty());
  EXPECT_EQ(a->stats().bad_messages, 1u);
}

TEST_F(StateTest, PiggybackRespectsUdpBufferSize) {
  Config cfg = test_config("a", 1);
  cfg.udp_buffer_size = 200;
  make(cfg);
  for (int i = 0; i < 20; ++i) feed(alive("n" + std::to_string(i), 10 + i, 1, std::string(20, 'm')));
  drain(*a, *codec);
  feed(Ping{7, "a", addr_of(5), "x"});
  while (auto t = a->poll_transmit()) {
    EXPECT_LE(t->payload.size(), 200u);
    EXPECT_GT(codec->decode_all(t->payload).size(), 1u);
  }
}

TEST_F(StateTest, IndirectPingHelperForwardsAck) {
  drain(*a, *codec);
  feed(IndirectPing{41, addr_of(3), "t", true, addr_of(5), "src"});
  auto out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, addr_of(3));
  const auto& ping = std::get<Ping>(out[0].msgs.at(0));
  EXPECT_EQ(ping.node, "t");
  EXPECT_EQ(ping.source, addr_of(1));
  feed(Ack{ping.seq, {}}, addr_of(3));
  out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, addr_of(5));
  EXPECT_EQ(std::get<Ack>(out[0].msgs.at(0)).seq, 41u);
  // No nack after the ack.
  advance(*a, now + 250ms);
  for (auto& d : drain(*a, *codec))
    for (auto& m : d.msgs) EXPECT_FALSE(std::holds_alternative<Nack>(m));
}

TEST_F(StateTest, IndirectPingHelperSendsNackAfterProbeTimeout) {
  Config cfg = test_config("a", 1);
  cfg.probe_interval = 0s;  // keep our own probes out of the way
  cfg.gossip_interval = 0s;
  make(cfg);
  drain(*a, *codec);
  feed(IndirectPing{42, addr_of(3), "t", true, {}, "src"}, addr_of(7));
  drain(*a, *codec);
  advance(*a, now + 199ms);
  EXPECT_TRUE(drain(*a, *codec).empty());
  advance(*a, now + 200ms);
  auto out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, addr_of(7));  // no source address: the packet's sender
  EXPECT_EQ(std::get<Nack>(out[0].msgs.at(0)).seq, 42u);

  // Without the nack flag: silence.
  feed(IndirectPing{43, addr_of(3), "t", false, addr_of(5), "src"});
  drain(*a, *codec);
  advance(*a, now + 1s);
  EXPECT_TRUE(drain(*a, *codec).empty());
}

TEST_F(StateTest, StreamPing) {
  auto reply = a->handle_stream(addr_of(2), codec->encode(Ping{3, "a", addr_of(2), "b"}), now);
  ASSERT_TRUE(reply);
  auto msgs = codec->decode_all(*reply);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(std::get<Ack>(msgs[0]).seq, 3u);
  EXPECT_FALSE(a->handle_stream(addr_of(2), codec->encode(Ping{3, "zz", addr_of(2), "b"}), now));
  EXPECT_EQ(a->stats().bad_messages, 1u);
}

TEST_F(StateTest, MalformedInputIsCountedNeverFatal) {
  uint64_t bad = 0;
  a->handle_packet(addr_of(2), {}, now);
  EXPECT_EQ(a->stats().bad_messages, ++bad);
  Bytes junk{0xff, 1, 2, 3};
  a->handle_packet(addr_of(2), junk, now);
  EXPECT_EQ(a->stats().bad_messages, ++bad);
  feed(Ack{999, {}});  // nobody waits for it
  EXPECT_EQ(a->stats().bad_messages, ++bad);
  feed(Nack{999});
  EXPECT_EQ(a->stats().bad_messages, ++bad);
  feed(PushPull{});  // not a datagram message
  EXPECT_EQ(a->stats().bad_messages, ++bad);

  auto reply = a->handle_stream(addr_of(2), junk, now);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(std::holds_alternative<ErrResp>(codec->decode_all(*reply).at(0)));
  EXPECT_EQ(a->stats().bad_messages, ++bad);
  reply = a->handle_stream(addr_of(2), codec->encode(alive("b", 2, 1)), now);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(std::holds_alternative<ErrResp>(codec->decode_all(*reply).at(0)));
  EXPECT_EQ(a->stats().bad_messages, ++bad);

  // Truncations and random bytes of every length.
  Bytes good = codec->encode(alive("b", 2, 1, "meta"));
  for (size_t n = 0; n < good.size(); ++n) {
    a->handle_packet(addr_of(2), std::span<const uint8_t>(good.data(), n), now);
    (void)a->handle_stream(addr_of(2), std::span<const uint8_t>(good.data(), n), now);
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    Bytes r(rng() % 64);
    for (auto& x : r) x = static_cast<uint8_t>(rng());
    a->handle_packet(addr_of(2), r, now);
    (void)a->handle_stream(addr_of(2), r, now);
  }
  EXPECT_EQ(a->local_node().state, NodeState::Alive);
}

TEST_F(StateTest, PingCommand) {
  drain(*a, *codec);
  uint64_t id = a->ping("b", addr_of(2), now);
  auto out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, addr_of(2));
  const auto ping = std::get<Ping>(out[0].msgs.at(0));
  EXPECT_EQ(ping.node, "b");
  now += 3ms;
  feed(Ack{ping.seq, {}}, addr_of(2));
  auto r = a->poll_ping_result();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, id);
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->rtt, 3ms);

  uint64_t id2 = a->ping("b", addr_of(2), now);
  advance(*a, now + 199ms);
  EXPECT_FALSE(a->poll_ping_result());
  advance(*a, now + 200ms);
  r = a->poll_ping_result();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, id2);
  EXPECT_FALSE(r->ok);
}

TEST_F(StateTest, LeaveAlone) {
  events();
  EXPECT_FALSE(a->has_left());
  EXPECT_TRUE(a->leave(now).ok());
  EXPECT_TRUE(a->has_left());
  EXPECT_TRUE(a->leave_propagated());  // nobody to tell
  EXPECT_EQ(a->local_node().state, NodeState::Left);
  EXPECT_EQ(a->num_members(), 0u);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::Leave);
  // Alive about us after leaving is ignored; so is a second leave.
  feed(Alive{9, "a", addr_of(1), {}, kVsn});
  EXPECT_EQ(a->local_node().state, NodeState::Left);
  EXPECT_EQ(a->local_node().incarnation, 1u);
  EXPECT_TRUE(a->leave(now).ok());
}

TEST_F(StateTest, LeaveWaitsForBroadcast) {
  feed(alive("b", 2, 1));
  ASSERT_TRUE(a->leave(now).ok());
  EXPECT_FALSE(a->leave_propagated());
  // Each gossip round or piggyback transmits it; retransmit limit for 2 nodes with mult 2 is 2.
  for (int i = 0; i < 3 && !a->leave_propagated(); ++i) feed(Ping{static_cast<uint32_t>(100 + i), "a", addr_of(2), "b"});
  EXPECT_TRUE(a->leave_propagated());
}

}  // namespace
}  // namespace memberlist::test
