// Probing, indirect probes with nacks, TCP fallback, buddy system, Lifeguard suspicion,
// gossip targets and reaping, on one Core driven by hand (reference §3.3-§3.6, §3.10).
#include <gtest/gtest.h>

#include "harness.h"

namespace memberlist::test {
namespace {

using namespace core;

const Vsn kVsn = Config{}.vsn();

struct Out {
  Instant at;
  Decoded d;
};

class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Config cfg = test_config("a", 1);
    cfg.gossip_interval = 0s;
    cfg.push_pull_interval = 0s;
    make(cfg);
  }
  // Only probing runs: no gossip, no push/pull, no TCP fallback.
  static Config probe_only_config() {
    Config cfg = test_config("a", 1);
    cfg.gossip_interval = 0s;
    cfg.push_pull_interval = 0s;
    cfg.disable_tcp_pings = true;
    return cfg;
  }
  void make(Config cfg) {
    cfg.log = [this](LogLevel level, std::string_view l) {
      logs.emplace_back(l);
      if (level == LogLevel::Error) errors.emplace_back(l);
    };
    a = std::make_unique<Core>(std::move(cfg), codec, now);
    drain(*a, *codec);
  }
  void feed(const Message& m, Address from = addr_of(9)) { a->handle_packet(from, codec->encode(m), now); }
  void add_peer(const std::string& name, int index, Vsn vsn = kVsn) {
    feed(Alive{1, name, addr_of(index), {}, vsn});
  }
  NodeState state(const std::string& name) {
    for (auto& n : a->all_nodes())
      if (n.name == name) return n.state;
    ADD_FAILURE() << "no node " << name;
    return NodeState::Dead;
  }
  bool known(const std::string& name) {
    for (auto& n : a->all_nodes())
      if (n.name == name) return true;
    return false;
  }
  bool logged(const std::string& needle) {
    return std::any_of(logs.begin(), logs.end(), [&](auto& l) { return l.find(needle) != std::string::npos; });
  }

  // Fires timers until `until`. Probe pings to nodes in `ack_for` are answered at once.
  // Returns every other datagram sent.
  std::vector<Out> run(Instant until, const std::set<std::string>& ack_for = {}) {
    std::vector<Out> out;
    while (auto t = a->poll_timeout()) {
      if (*t > until) break;
      now = *t;
      a->handle_timeout(now);
      for (auto& d : drain(*a, *codec)) {
        const auto* ping = d.msgs.empty() ? nullptr : std::get_if<Ping>(&d.msgs[0]);
        if (ping && ack_for.count(ping->node)) {
          feed(Ack{ping->seq, {}}, d.to);
          continue;
        }
        out.push_back({now, std::move(d)});
      }
    }
    now = std::max(now, until);
    return out;
  }

  // Runs until `a` sends a probe ping to `target`, acking probes of `others` on the way.
  Out next_probe_of(const std::string& target, const std::set<std::string>& others, Duration limit = 60s) {
    const Instant end = now + limit;
    while (auto t = a->poll_timeout()) {
      if (*t > end) break;
      for (auto& o : run(*t, others)) {
        const auto* ping = o.d.msgs.empty() ? nullptr : std::get_if<Ping>(&o.d.msgs[0]);
        if (ping && ping->node == target) return o;
      }
    }
    ADD_FAILURE() << "no probe of " << target;
    return {};
  }

  std::shared_ptr<TestCodec> codec = std::make_shared<TestCodec>();
  Instant now{1000s};
  std::vector<std::string> logs;
  std::vector<std::string> errors;  // the lines logged at ERROR
  std::unique_ptr<Core> a;
};

// The periodic probe tick is lax (a runtime may run it late to batch wake-ups, its phase is
// random anyway); the probe's own timeouts are exact: poll_exact_timeout() leaves out the
// first and reports the second.
TEST_F(ProbeTest, ProbeTickIsLaxItsTimeoutsAreExact) {
  add_peer("b", 2);
  // With gossip and push/pull off, only the probe tick and the queue check are scheduled.
  auto t = a->poll_timeout();
  ASSERT_TRUE(t);
  EXPECT_EQ(a->poll_exact_timeout(), std::nullopt);
  now = *t;
  a->handle_timeout(now);
  const Ping* ping = nullptr;
  auto sent = drain(*a, *codec);
  for (auto& d : sent)
    if (!d.msgs.empty()) ping = std::get_if<Ping>(&d.msgs[0]);
  ASSERT_NE(ping, nullptr) << "the tick did not probe b";
  // The probe runs: its direct-ack timeout is the earliest deadline, and exact.
  EXPECT_EQ(a->poll_exact_timeout(), now + a->config().probe_timeout);
  EXPECT_EQ(a->poll_timeout(), now + a->config().probe_timeout);
  feed(Ack{ping->seq, {}}, addr_of(2));
  // Acked: only the lax ticks are left, the next probe tick first.
  EXPECT_EQ(a->poll_exact_timeout(), std::nullopt);
  ASSERT_TRUE(a->poll_timeout());
  EXPECT_EQ(*a->poll_timeout(), *t + a->config().probe_interval);
}

TEST_F(ProbeTest, RoundRobinOverAllPeers) {
  for (int i = 2; i <= 5; ++i) add_peer("n" + std::to_string(i), i);
  std::set<std::string> peers{"n2", "n3", "n4", "n5"};
  std::multiset<std::string> probed;
  std::vector<Out> seen;
  // Record the targets of the next 8 probes (two full rounds), acking each.
  while (probed.size() < 8) {
    auto t = a->poll_timeout();
    ASSERT_TRUE(t);
    now = *t;
    a->handle_timeout(now);
    for (auto& d : drain(*a, *codec)) {
      if (const auto* ping = std::get_if<Ping>(&d.msgs.at(0))) {
        probed.insert(ping->node);
        EXPECT_EQ(ping->source, addr_of(1));
        EXPECT_EQ(ping->source_node, "");  // no receiver reads it: not sent
        feed(Ack{ping->seq, {}}, d.to);
      }
    }
  }
  for (const auto& p : peers) EXPECT_EQ(probed.count(p), 2u) << p;
  EXPECT_EQ(a->stats().probes, 8u);
  EXPECT_EQ(a->stats().probe_failures, 0u);
  EXPECT_EQ(a->health_score(), 0);
}

// A node whose datagrams leave from its advertised address sends pings without a reply
// address: the target answers the packet's source, which is the same.
TEST_F(ProbeTest, PingLeavesOutTheReplyAddressWhenItIsThePacketSource) {
  Config cfg = probe_only_config();
  cfg.advertise_is_source = true;
  make(cfg);
  add_peer("b", 2);
  Out p = next_probe_of("b", {});
  const auto& ping = std::get<Ping>(p.d.msgs.at(0));
  EXPECT_TRUE(ping.source.empty());
  EXPECT_EQ(ping.node, "b");
  EXPECT_EQ(p.d.to, addr_of(2));
  // The ack to the packet's source completes the probe.
  feed(Ack{ping.seq, {}}, addr_of(2));
  run(now + 5s, {"b"});
  EXPECT_EQ(state("b"), NodeState::Alive);
  EXPECT_EQ(a->stats().probe_failures, 0u);
}

TEST_F(ProbeTest, FailedProbeWithoutHelpersSuspects) {
  add_peer("b", 2);
  Out p = next_probe_of("b", {});
  const uint32_t seq = std::get<Ping>(p.d.msgs[0]).seq;
  const Instant sent = p.at;
  // At probe_timeout: no helpers to ask, so only the TCP fallback.
  run(sent + 200ms);
  auto req = a->poll_stream();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->to, addr_of(2));
  EXPECT_TRUE(req->expect_reply);
  EXPECT_EQ(req->deadline, sent + 1s);
  auto msgs = codec->decode_all(req->payload);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(std::get<Ping>(msgs[0]).seq, seq);
  EXPECT_EQ(std::get<Ping>(msgs[0]).node, "b");
  run(sent + 1s - 1us);
  EXPECT_EQ(state("b"), NodeState::Alive);
  // The driver reports the TCP timeout at its deadline.
  run(sent + 1s);
  a->handle_stream_response(req->id, Status::error(Errc::timeout, "i/o timeout"), {}, now);
  EXPECT_EQ(state("b"), NodeState::Suspect);
  EXPECT_EQ(a->stats().probe_failures, 1u);
  EXPECT_EQ(a->health_score(), 1);  // no nack-capable helpers: +1
  EXPECT_TRUE(logged("Suspect b has failed, no acks received"));
  EXPECT_TRUE(logged("Failed fallback TCP ping"));
  // A node that cannot be reached is what the fallback is for: not an error (as in the reference).
  EXPECT_TRUE(errors.empty()) << errors.front();
}

// One datagram full of pings naming another address makes at most max_replies_per_packet
// acks: output per received datagram is bounded, whatever it holds.
TEST_F(ProbeTest, OneDatagramCausesAtMostItsReplyBudget) {
  std::vector<Bytes> parts;
  for (uint32_t i = 0; i < 100; ++i) parts.push_back(codec->encode(Ping{i, "", addr_of(7), ""}));
  for (uint32_t i = 0; i < 100; ++i) parts.push_back(codec->encode(IndirectPing{i, addr_of(8), "x", false, addr_of(7), ""}));
  a->handle_packet(addr_of(9), codec->pack(parts), now);
  size_t acks = 0, probes = 0;
  for (auto& d : drain(*a, *codec)) {
    for (auto& m : d.msgs) {
      if (std::holds_alternative<Ack>(m)) ++acks;
      if (std::holds_alternative<Ping>(m)) ++probes;
    }
  }
  EXPECT_EQ(acks + probes, Config{}.max_replies_per_packet);
  EXPECT_EQ(acks, Config{}.max_replies_per_packet);  // in the order they came
  EXPECT_EQ(a->stats().bad_messages, 200u - Config{}.max_replies_per_packet);
  // The budget is per datagram: the next one is answered.
  feed(Ping{500, "", {}, ""});
  auto out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<Ack>(out[0].msgs.at(0)).seq, 500u);
}

// The ack we relay for an indirect ping is a reply too: a datagram that spent its budget on
// pings does not also get a relayed ack out of us (found by fuzz_core_packet).
TEST_F(ProbeTest, RelayedAckCountsAgainstTheReplyBudget) {
  feed(IndirectPing{77, addr_of(8), "x", false, addr_of(7), ""});
  auto out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  const uint32_t relayed_seq = std::get<Ping>(out[0].msgs.at(0)).seq;
  std::vector<Bytes> parts;
  for (uint32_t i = 0; i < Config{}.max_replies_per_packet; ++i) parts.push_back(codec->encode(Ping{i, "", {}, ""}));
  parts.push_back(codec->encode(Ack{relayed_seq, {}}));
  a->handle_packet(addr_of(9), codec->pack(parts), now);
  size_t acks = 0, relayed = 0;
  for (auto& d : drain(*a, *codec)) {
    for (auto& m : d.msgs) {
      if (auto* ack = std::get_if<Ack>(&m)) (ack->seq == 77 ? relayed : acks)++;
    }
  }
  EXPECT_EQ(acks, Config{}.max_replies_per_packet);
  EXPECT_EQ(relayed, 0u);
  // With budget left, the relay goes out.
  feed(IndirectPing{78, addr_of(8), "x", false, addr_of(7), ""});
  out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  feed(Ack{std::get<Ping>(out[0].msgs.at(0)).seq, {}});
  out = drain(*a, *codec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<Ack>(out[0].msgs.at(0)).seq, 78u);
}

TEST_F(ProbeTest, TcpFallbackSavesTheNode) {
  add_peer("b", 2);
  Out p = next_probe_of("b", {});
  const uint32_t seq = std::get<Ping>(p.d.msgs[0]).seq;
  run(p.at + 200ms);
  auto req = a->poll_stream();
  ASSERT_TRUE(req);
  a->handle_stream_response(req->id, Status::success(), codec->encode(Ack{seq, {}}), now);
  EXPECT_EQ(state("b"), NodeState::Alive);  // still waits for UDP acks until the interval ends
  run(p.at + 1s);
  EXPECT_EQ(state("b"), NodeState::Alive);
  EXPECT_EQ(a->stats().probe_failures, 0u);
  EXPECT_EQ(a->health_score(), 0);
  EXPECT_TRUE(logged("Was able to connect to b over TCP but UDP probes failed, network may be misconfigured"));
}

TEST_F(ProbeTest, TcpAckWithWrongSeqDoesNotCount) {
  add_peer("b", 2);
  Out p = next_probe_of("b", {});
  const uint32_t seq = std::get<Ping>(p.d.msgs[0]).seq;
  run(p.at + 200ms);
  auto req = a->poll_stream();
  ASSERT_TRUE(req);
  Status s = a->handle_stream_response(req->id, Status::success(), codec->encode(Ack{seq + 100, {}}), now);
  EXPECT_FALSE(s.ok());
  run(p.at + 1s);
  EXPECT_EQ(state("b"), NodeState::Suspect);
  // A peer that answers with the wrong ack is a real fault: logged at ERROR.
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("doesn't match ping"), std::string::npos) << errors[0];
}

TEST_F(ProbeTest, TcpFallbackDisabledGlobally) {
  make(probe_only_config());
  add_peer("b", 2);
  Out p = next_probe_of("b", {});
  run(p.at + 1s);
  EXPECT_FALSE(a->poll_stream());
  EXPECT_EQ(state("b"), NodeState::Suspect);
}

// The reference's probe ticker is a channel that buffers one tick: when a failed probe ends
// (one probe interval after it started, that is after the next tick was due), the next probe
// starts at once instead of a whole interval later. Timers here fire 5 ms late, as in a real
// runtime, so the tick always falls inside the failed probe.
TEST_F(ProbeTest, TickDuringAFailedProbeStartsTheNextProbeWhenItEnds) {
  make(probe_only_config());
  add_peer("b", 2);
  add_peer("c", 3);
  std::optional<Instant> b_sent;
  std::optional<Instant> next_probe;
  while (!next_probe) {
    auto t = a->poll_timeout();
    ASSERT_TRUE(t);
    now = *t + 5ms;
    ASSERT_LT(now, Instant{1000s} + 60s) << "no probe after the failed one";
    a->handle_timeout(now);
    for (auto& d : drain(*a, *codec)) {
      const auto* ping = d.msgs.empty() ? nullptr : std::get_if<Ping>(&d.msgs[0]);
      if (!ping) continue;
      if (b_sent) {
        next_probe = now;
      } else if (ping->node == "b") {
        b_sent = now;  // b never answers
      } else {
        feed(Ack{ping->seq, {}}, d.to);
      }
    }
  }
  EXPECT_EQ(state("b"), NodeState::Suspect);
  // Probe intervals are scaled by the health score, which the failure raised to 1 (2 s);
  // dropping the tick would put the next probe at b_sent + 2 s or later.
  EXPECT_LE(*next_probe - *b_sent, 1s + 5ms);
}

// With one indirect check (Local preset) in a 3-node cluster, the reference's kRandomNodes
// draws 3n = 9 times and misses the only eligible helper 2.6% of the time; ours tops up, so
// every failed direct probe asks the helper.
TEST_F(ProbeTest, EveryFailedDirectProbeAsksTheOnlyHelper) {
  Config cfg = probe_only_config();
  cfg.indirect_checks = 1;
  make(cfg);
  add_peer("b", 2);
  add_peer("c", 3);
  int probes_of_b = 0, indirect = 0;
  const Instant end = now + 600s;
  // Until 150 probes of b and the indirect ping of the last one (or a virtual-time limit).
  while ((probes_of_b < 150 || indirect < probes_of_b) && now < end) {
    auto t = a->poll_timeout();
    ASSERT_TRUE(t);
    now = *t;
    a->handle_timeout(now);
    for (auto& d : drain(*a, *codec)) {
      if (d.msgs.empty()) continue;
      if (const auto* ping = std::get_if<Ping>(&d.msgs[0])) {
        // b never answers directly; c answers its own probes.
        if (ping->node == "b") probes_of_b++;
        else feed(Ack{ping->seq, {}}, d.to);
      } else if (const auto* ind = std::get_if<IndirectPing>(&d.msgs[0])) {
        EXPECT_EQ(d.to, addr_of(3));
        indirect++;
        feed(Ack{ind->seq, {}}, d.to);  // c reached b: b stays alive
      }
    }
  }
  EXPECT_EQ(probes_of_b, 150);
  EXPECT_EQ(indirect, probes_of_b);
  EXPECT_EQ(state("b"), NodeState::Alive);
  EXPECT_EQ(a->stats().probe_failures, 0u);
}

TEST_F(ProbeTest, TcpFallbackDisabledForNode) {
  Config cfg = test_config("a", 1);
  cfg.gossip_interval = 0s;
  cfg.push_pull_interval = 0s;
  cfg.disable_tcp_pings_for_node = [](std::string_view n) { return n == "b"; };
  make(cfg);
  add_peer("b", 2);
  add_peer("c", 3);
  Out p = next_probe_of("b", {"c"});
  run(p.at + 1s, {"c"});
  EXPECT_FALSE(a->poll_stream());
  EXPECT_EQ(state("b"), NodeState::Suspect);
  // c still gets TCP pings.
  Out pc = next_probe_of("c", {});
  run(pc.at + 200ms);
  auto req = a->poll_stream();
  ASSERT_TRUE(req);
  EXPECT_EQ(req->to, addr_of(3));
}

TEST_F(ProbeTest, NoTcpFallbackForOldProtocol) {
  add_peer("b", 2, Vsn{1, 2, 2, 0, 0, 0});  // pmax < 3
  Out p = next_probe_of("b", {});
  run(p.at + 1s);
  EXPECT_FALSE(a->poll_stream());
  EXPECT_EQ(state("b"), NodeState::Suspect);
}

class IndirectTest : public ProbeTest {
 protected:
  void SetUp() override {
    Config cfg = test_config("a", 1);
    cfg.gossip_interval = 0s;
    cfg.push_pull_interval = 0s;
    cfg.disable_tcp_pings = true;
    cfg.indirect_checks = 3;
    make(cfg);
  }
  // Probes b until the indirect step; returns the indirect pings sent.
  std::vector<std::pair<Address, IndirectPing>> probe_b_indirect(Out& p) {
    p = next_probe_of("b", helpers);
    std::vector<std::pair<Address, IndirectPing>> out;
    for (auto& o : run(p.at + 200ms, helpers))
      for (auto& m : o.d.msgs)
        if (auto* ind = std::get_if<IndirectPing>(&m)) out.push_back({o.d.to, *ind});
    return out;
  }
  std::set<std::string> helpers{"c", "d"};
};

TEST_F(IndirectTest, HelperAckSavesTheNode) {
  add_peer("b", 2);
  add_peer("c", 3);
  add_peer("d", 4);
  Out p;
  auto ind = probe_b_indirect(p);
  ASSERT_EQ(ind.size(), 2u);  // only c and d are eligible: not self, not the target
  const uint32_t seq = std::get<Ping>(p.d.msgs[0]).seq;
  std::set<Address> to;
  for (auto& [addr, m] : ind) {
    to.insert(addr);
    EXPECT_EQ(m.seq, seq);
    EXPECT_EQ(m.node, "b");
    EXPECT_EQ(m.target, addr_of(2));
    EXPECT_TRUE(m.nack);
    EXPECT_EQ(m.source, addr_of(1));
  }
  EXPECT_EQ(to, (std::set<Address>{addr_of(3), addr_of(4)}));
  feed(Ack{seq, {}}, addr_of(3));  // relayed by c
  run(p.at + 2s, helpers);
  EXPECT_EQ(state("b"), NodeState::Alive);
  EXPECT_EQ(a->stats().probe_failures, 0u);
}

TEST_F(IndirectTest, AllNacksMeanWeAreHealthy) {
  add_peer("b", 2);
  add_peer("c", 3);
  add_peer("d", 4);
  Out p;
  auto ind = probe_b_indirect(p);
  ASSERT_EQ(ind.size(), 2u);
  for (auto& [addr, m] : ind) feed(Nack{m.seq}, addr);
  run(p.at + 1s);
  EXPECT_EQ(state("b"), NodeState::Suspect);
  EXPECT_EQ(a->health_score(), 0);  // expected 2, received 2
}

TEST_F(IndirectTest, MissingNacksRaiseTheScore) {
  add_peer("b", 2);
  add_peer("c", 3);
  add_peer("d", 4);
  Out p;
  auto ind = probe_b_indirect(p);
  ASSERT_EQ(ind.size(), 2u);
  feed(Nack{ind[0].second.seq}, ind[0].first);  // one of two
  run(p.at + 1s);  // no acks now: the probe starting at the same instant must not lower the score
  EXPECT_EQ(state("b"), NodeState::Suspect);
  EXPECT_EQ(a->health_score(), 1);
}

TEST_F(IndirectTest, NoNacksRaiseTheScoreByExpected) {
  add_peer("b", 2);
  add_peer("c", 3);
  add_peer("d", 4);
  Out p;
  auto ind = probe_b_indirect(p);
  ASSERT_EQ(ind.size(), 2u);
  auto outs = run(p.at + 1s);
  EXPECT_EQ(a->health_score(), 2);
  // The next probe (the tick at the same instant), whoever it targets, runs with a tripled
  // interval: its ack handler, and so its failure, ends 3s after the ping.
  auto next = std::find_if(outs.begin(), outs.end(), [&](const Out& o) {
    return o.at == p.at + 1s && !o.d.msgs.empty() && std::holds_alternative<Ping>(o.d.msgs[0]);
  });
  ASSERT_NE(next, outs.end());
  const Instant sent = next->at;
  EXPECT_EQ(a->stats().degraded_probes, 1u);
  EXPECT_EQ(a->stats().probe_failures, 1u);
  // probe_timeout itself is not scaled: the indirect step still starts after 200ms.
  auto mid = run(sent + 200ms);
  EXPECT_TRUE(std::any_of(mid.begin(), mid.end(), [&](const Out& o) {
    return o.at == sent + 200ms && std::holds_alternative<IndirectPing>(o.d.msgs.at(0));
  }));
  run(sent + 3s - 1us);
  EXPECT_EQ(a->stats().probe_failures, 1u);
  run(sent + 3s);
  EXPECT_EQ(a->stats().probe_failures, 2u);
}

TEST_F(IndirectTest, HelpersWithoutNackSupport) {
  add_peer("b", 2);
  add_peer("c", 3, Vsn{1, 3, 2, 0, 0, 0});  // pmax 3: no nacks
  add_peer("d", 4, Vsn{1, 3, 2, 0, 0, 0});
  Out p;
  auto ind = probe_b_indirect(p);
  ASSERT_EQ(ind.size(), 2u);
  for (auto& [addr, m] : ind) EXPECT_FALSE(m.nack);
  run(p.at + 1s);
  EXPECT_EQ(a->health_score(), 1);  // plain failure: +1
}

TEST_F(ProbeTest, BuddySystemLetsTheSuspectRefute) {
  add_peer("b", 2);
  feed(Suspect{1, "b", "c"});
  ASSERT_EQ(state("b"), NodeState::Suspect);
  Out p = next_probe_of("b", {});
  // The probe of a suspect is a compound [ping, suspect] and carries nothing else.
  ASSERT_EQ(p.d.msgs.size(), 2u);
  const auto& ping = std::get<Ping>(p.d.msgs[0]);
  const auto& sus = std::get<Suspect>(p.d.msgs[1]);
  EXPECT_EQ(sus.node, "b");
  EXPECT_EQ(sus.from, "a");
  EXPECT_EQ(sus.incarnation, 1u);

  // b receives exactly that datagram: it refutes and its ack carries the news.
  Config bc = test_config("b", 2);
  bc.gossip_interval = 0s;
  bc.probe_interval = 0s;
  bc.push_pull_interval = 0s;
  Core b(bc, codec, now);
  drain(b, *codec);
  b.handle_packet(addr_of(1), codec->pack({codec->encode(ping), codec->encode(sus)}), now);
  EXPECT_EQ(b.local_node().incarnation, 2u);
  EXPECT_EQ(b.stats().refutes, 1u);
  EXPECT_EQ(b.local_node().state, NodeState::Alive);
  // The ping was answered before the suspect part was read; the refutation rides on the
  // next exchange (here a's next ping).
  auto deliver_to_a = [&] {
    bool saw_ack = false;
    while (auto t = b.poll_transmit()) {
      EXPECT_EQ(t->to, addr_of(1));
      for (auto& m : codec->decode_all(t->payload)) saw_ack |= std::holds_alternative<Ack>(m);
      a->handle_packet(addr_of(2), t->payload, now);
    }
    return saw_ack;
  };
  EXPECT_TRUE(deliver_to_a());
  b.handle_packet(addr_of(1), codec->encode(Ping{ping.seq + 1000, "b", addr_of(1), "a"}), now);
  EXPECT_TRUE(deliver_to_a());
  EXPECT_EQ(state("b"), NodeState::Alive);
  for (auto& n : a->all_nodes()) {
    if (n.name == "b") {
      EXPECT_EQ(n.incarnation, 2u);
    }
  }
}

// Lifeguard suspicion: the timeout starts at max and shrinks with each independent
// confirmation (state_test.go ProbeNode_Suspect_Dogpile). probe interval 100ms,
// suspicion_mult 5 (k = 3), max mult 2: min 500ms, max 1000ms.
struct DogpileCase {
  int nodes;          // cluster size including us and the suspect
  int confirmations;  // independent confirmations after the first accusation
  Duration expected;
  bool degraded;
};

class DogpileTest : public ProbeTest, public ::testing::WithParamInterface<DogpileCase> {};

TEST_P(DogpileTest, TimeoutVsConfirmations) {
  const DogpileCase c = GetParam();
  Config cfg = test_config("a", 1);
  cfg.gossip_interval = 0s;
  cfg.push_pull_interval = 0s;
  cfg.probe_interval = 100ms;
  cfg.probe_timeout = 50ms;
  cfg.suspicion_mult = 5;
  cfg.suspicion_max_timeout_mult = 2;
  make(cfg);
  for (int i = 2; i <= c.nodes; ++i) add_peer("p" + std::to_string(i), i);
  // We are the accuser, as after a failed probe; our own later probes add nothing.
  const Instant t0 = now;
  feed(Suspect{1, "p2", "a"});
  for (int i = 0; i < c.confirmations; ++i) feed(Suspect{1, "p2", "other" + std::to_string(i)});
  std::set<std::string> peers;
  for (int i = 3; i <= c.nodes; ++i) peers.insert("p" + std::to_string(i));
  while (state("p2") == NodeState::Suspect) {
    auto t = a->poll_timeout();
    ASSERT_TRUE(t);
    run(*t, peers);
  }
  EXPECT_EQ(state("p2"), NodeState::Dead);
  EXPECT_EQ(now - t0, c.expected);
  EXPECT_EQ(a->stats().degraded_timeouts, c.degraded ? 1u : 0u);
  EXPECT_TRUE(logged("Marking p2 as failed, suspect timeout reached (" +
                     std::to_string(std::min(c.confirmations, 3)) + " peer confirmations)"));
}

INSTANTIATE_TEST_SUITE_P(Lifeguard, DogpileTest,
                         ::testing::Values(DogpileCase{3, 0, 500ms, false},   // n-2 < k: k = 0, min
                                           DogpileCase{4, 0, 500ms, false},   // still k = 0
                                           DogpileCase{5, 0, 1000ms, true},   // k = 3: starts at max
                                           DogpileCase{6, 0, 1000ms, true},
                                           DogpileCase{6, 1, 750ms, true},    // 1 - ln2/ln4 * 0.5
                                           DogpileCase{6, 2, 603ms, true},    // 1 - ln3/ln4 * 0.5
                                           DogpileCase{6, 3, 500ms, false},   // driven to min
                                           DogpileCase{6, 4, 500ms, false})); // extra ones ignored

TEST_F(ProbeTest, ConfirmationsAreRegossiped) {
  Config cfg = test_config("a", 1);
  cfg.push_pull_interval = 0s;
  cfg.suspicion_mult = 5;
  cfg.probe_interval = 10s;  // keep probes away from this short window
  make(cfg);
  for (int i = 2; i <= 6; ++i) add_peer("p" + std::to_string(i), i);
  feed(Suspect{1, "p2", "x"});
  run(now + 1s);  // gossip drains the queue (retransmit limit 2 * ceil(log10 7) = 2)
  EXPECT_EQ(a->stats().broadcast_queue, 0u);
  feed(Suspect{1, "p2", "x"});  // same accuser: nothing new
  EXPECT_EQ(a->stats().broadcast_queue, 0u);
  feed(Suspect{1, "p2", "y"});  // new confirmation: re-gossiped
  EXPECT_EQ(a->stats().broadcast_queue, 1u);
}

TEST_F(ProbeTest, GossipTargetsIncludeRecentDeadNeverLeft) {
  Config cfg = test_config("a", 1);
  cfg.push_pull_interval = 0s;
  cfg.gossip_nodes = 10;
  cfg.retransmit_mult = 10;
  make(cfg);
  add_peer("b", 2);
  add_peer("c", 3);
  add_peer("d", 4);
  add_peer("e", 5);
  feed(Suspect{1, "c", "x"});  // suspect: still gossiped to
  feed(Dead{1, "d", "x"});     // dead: gossiped to for gossip_to_the_dead_time
  feed(Dead{1, "e", "e"});     // left: never
  const std::set<std::string> live{"b", "c"};
  auto first_round = [&](Instant until) {
    std::set<Address> to;
    std::optional<Instant> first;
    for (auto& o : run(until, live)) {
      const auto& m0 = o.d.msgs.at(0);
      if (std::holds_alternative<Ping>(m0) || std::holds_alternative<IndirectPing>(m0)) continue;
      if (!first) first = o.at;
      if (o.at == *first) to.insert(o.d.to);
    }
    return to;
  };
  EXPECT_EQ(first_round(now + 100ms), (std::set<Address>{addr_of(2), addr_of(3), addr_of(4)}));
  run(now + 16s, live);
  feed(Alive{2, "b", addr_of(2), {}, kVsn});  // something new to gossip
  EXPECT_EQ(first_round(now + 100ms), (std::set<Address>{addr_of(2), addr_of(3)}));
}

TEST_F(ProbeTest, ReapDeadAndLeftAfterGossipToTheDeadTime) {
  add_peer("b", 2);
  add_peer("c", 3);
  add_peer("d", 4);
  feed(Dead{1, "c", "x"});
  feed(Dead{1, "d", "d"});
  const Instant t0 = now;
  run(t0 + 14s, {"b"});
  EXPECT_TRUE(known("c"));
  EXPECT_TRUE(known("d"));
  run(t0 + 18s, {"b"});  // a few probe wrap-arounds later
  EXPECT_FALSE(known("c"));
  EXPECT_FALSE(known("d"));
  EXPECT_TRUE(known("b"));
  EXPECT_EQ(a->stats().dead + a->stats().left, 0u);
  // The names are free again, at any address.
  feed(Alive{1, "c", addr_of(7), {}, kVsn});
  EXPECT_EQ(state("c"), NodeState::Alive);
}

TEST_F(ProbeTest, DeadAndLeftAreNotProbed) {
  add_peer("b", 2);
  add_peer("c", 3);
  add_peer("d", 4);
  feed(Dead{1, "c", "x"});
  feed(Dead{1, "d", "d"});
  // The dead node may get reconnection pings (at most one per reconnect_interval, see
  // reconnect_test.cpp), which are not probes; the node that left gets nothing.
  int reconnect_pings = 0;
  for (auto& o : run(now + 10s, {"b"}))
    for (auto& m : o.d.msgs)
      if (auto* p = std::get_if<Ping>(&m)) {
        if (p->node == "c" && o.d.to == addr_of(3)) ++reconnect_pings;
        else ADD_FAILURE() << "probed " << p->node;
      }
  EXPECT_LE(reconnect_pings, 1);
  EXPECT_EQ(a->metrics().counter("memberlist.reconnect.attempts", {{"target", "member"}}), reconnect_pings);
  // Ticks that only find dead/left nodes within one pass probe nobody (as in the reference).
  EXPECT_GE(a->stats().probes, 5u);
}

}  // namespace
}  // namespace memberlist::test
