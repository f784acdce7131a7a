// Application data on real sockets: metadata updates, user messages, broadcasts, the metric
// listener, and leave followed at once by shutdown.
#include <map>

#include "helpers.h"

namespace memberlist::runtime::test {
namespace {

using core::EventType;
using core::NodeState;

// Events and notifications of one node.
struct Inbox {
  std::mutex mu;
  std::vector<core::Event> events;
  std::vector<core::UserMessage> messages;
  std::vector<core::BroadcastReceived> broadcasts;
  std::vector<core::BroadcastDone> done;
  std::map<std::string, int> metric_samples;

  Callbacks callbacks() {
    Callbacks cb;
    cb.on_event = [this](const core::Event& e) {
      std::lock_guard<std::mutex> l(mu);
      events.push_back(e);
    };
    cb.on_notification = [this](const core::Notification& n) {
      std::lock_guard<std::mutex> l(mu);
      if (auto* m = std::get_if<core::UserMessage>(&n)) messages.push_back(*m);
      if (auto* b = std::get_if<core::BroadcastReceived>(&n)) broadcasts.push_back(*b);
      if (auto* d = std::get_if<core::BroadcastDone>(&n)) done.push_back(*d);
    };
    return cb;
  }
  template <class Fn>
  auto with(Fn&& fn) {
    std::lock_guard<std::mutex> l(mu);
    return fn(*this);
  }
  bool saw(EventType type, const std::string& name, NodeState state) {
    return with([&](Inbox& in) {
      for (const auto& e : in.events) {
        if (e.type == type && e.node.name == name && e.node.state == state) return true;
      }
      return false;
    });
  }
  bool has_message(const core::Bytes& payload) {
    return with([&](Inbox& in) {
      for (const auto& m : in.messages) {
        if (m.payload == payload) return true;
      }
      return false;
    });
  }
};

core::Bytes pattern(size_t n, uint8_t seed) {
  core::Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + seed + (i >> 8));
  return b;
}

class AppData : public ::testing::Test {
 protected:
  std::shared_ptr<Runtime> rt = std::make_shared<Runtime>(2);
  std::vector<std::unique_ptr<Inbox>> inboxes;
  std::vector<std::shared_ptr<Node>> nodes;

  void TearDown() override { nodes.clear(); }

  std::shared_ptr<Node> add(Options o) {
    inboxes.push_back(std::make_unique<Inbox>());
    auto n = make_node(rt, std::move(o), inboxes.back()->callbacks());
    if (n) nodes.push_back(n);
    return n;
  }

  void start(int n, const std::function<void(Options&)>& tweak = {}) {
    for (int i = 0; i < n; ++i) {
      auto o = fast_options("node-" + std::to_string(i));
      if (tweak) tweak(o);
      ASSERT_TRUE(add(std::move(o)));
    }
    for (int i = 1; i < n; ++i) {
      Status st;
      EXPECT_EQ(nodes[i]->join({addr_of(*nodes[0])}, st), 1) << st.message;
    }
    ASSERT_TRUE(converged(n)) << "cluster did not converge";
  }

  bool converged(int n) {
    return eventually([&] {
      for (auto& node : nodes) {
        if (node->num_members() != static_cast<size_t>(n)) return false;
      }
      return true;
    });
  }
};

TEST_F(AppData, MetadataUpdateIsSeenWithUpdateEvents) {
  start(3);
  core::Bytes meta{'r', 'o', 'l', 'e', '=', 'w'};
  auto st = nodes[0]->update_meta(meta, std::chrono::seconds(20));
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(nodes[0]->local_node().meta, meta);
  for (int i = 1; i < 3; ++i) {
    EXPECT_TRUE(eventually([&] {
      return inboxes[i]->with([&](Inbox& in) {
        for (const auto& e : in.events) {
          if (e.type == EventType::Update && e.node.name == "node-0" && e.node.meta == meta) return true;
        }
        return false;
      });
    })) << "node " << i;
    for (const auto& m : nodes[i]->members()) {
      if (m.name == "node-0") {
        EXPECT_EQ(m.meta, meta);
      }
    }
  }
  // Over meta_max_size: refused, nothing changes.
  EXPECT_EQ(nodes[0]->update_meta(core::Bytes(100000, 1), std::chrono::seconds(1)).code, core::Errc::too_large);
  EXPECT_EQ(nodes[0]->local_node().meta, meta);
  // update_node without a node_meta hook keeps the metadata and still succeeds.
  st = nodes[1]->update_node(std::chrono::seconds(20));
  EXPECT_TRUE(st.ok()) << st.message;
}

TEST_F(AppData, MessagesArriveIntactAndOversizedAreRefused) {
  start(2, [](Options& o) { o.core.max_user_msg_size = 2u << 20; });
  auto small = pattern(100, 1);
  auto big_datagram = pattern(60000, 2);
  auto mib = pattern(1u << 20, 3);
  auto to_addr = pattern(50, 4);
  ASSERT_TRUE(nodes[0]->send_best_effort("node-1", small).ok());
  ASSERT_TRUE(nodes[0]->send_best_effort("node-1", big_datagram).ok());
  auto st = nodes[0]->send_reliable("node-1", mib);
  ASSERT_TRUE(st.ok()) << st.message;
  st = nodes[0]->send_to_address(addr_of(*nodes[1]), to_addr);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_TRUE(eventually([&] { return inboxes[1]->has_message(mib); }));
  EXPECT_TRUE(eventually([&] { return inboxes[1]->has_message(to_addr); }));
  // UDP on loopback is not lost in practice; tolerate it by resending the small one.
  EXPECT_TRUE(eventually([&] {
    if (inboxes[1]->has_message(small)) return true;
    (void)nodes[0]->send_best_effort("node-1", small);
    return false;
  }));
  EXPECT_TRUE(eventually([&] {
    if (inboxes[1]->has_message(big_datagram)) return true;
    (void)nodes[0]->send_best_effort("node-1", big_datagram);
    return false;
  }));

  // Refusals: too large for a datagram, over max_user_msg_size, unknown member, bad address.
  EXPECT_EQ(nodes[0]->send_best_effort("node-1", core::Bytes(65500, 1)).code, core::Errc::too_large);
  EXPECT_EQ(nodes[0]->send_to_address(addr_of(*nodes[1]), core::Bytes(70000, 1)).code, core::Errc::too_large);
  EXPECT_EQ(nodes[0]->send_reliable("node-1", core::Bytes(3u << 20, 1)).code, core::Errc::too_large);
  EXPECT_EQ(nodes[0]->send_best_effort("nobody", small).code, core::Errc::not_found);
  EXPECT_EQ(nodes[0]->send_reliable("nobody", small).code, core::Errc::not_found);
  EXPECT_FALSE(nodes[0]->send_to_address("[bad", small).ok());
  EXPECT_FALSE(nodes[0]->send_to_address("x/127.0.0.1:5", small).ok());
}

TEST_F(AppData, BroadcastReachesEveryNodeOnce) {
  // Epidemic broadcasts are sent retransmit_mult * ceil(log10(n + 1)) times by each node and
  // nothing repairs a miss: with the Local preset's 2 (2 sends per node at 4 nodes) a node
  // can be missed by chance. 8 makes a miss negligible; this test checks exactly-once
  // delivery and the done outcome, not the epidemic's odds (the simulator measures those).
  // Repair off: the outcome is Delivered once the budget is sent (with it, Settled later).
  start(4, [](Options& o) {
    o.core.retransmit_mult = 8;
    o.core.max_repair_broadcasts = 0;
  });
  uint64_t id = 0;
  auto payload = pattern(200, 9);
  ASSERT_TRUE(nodes[0]->queue_broadcast("", payload, id).ok());
  EXPECT_NE(id, 0u);
  auto done_with = [&](uint64_t want) {
    return inboxes[0]->with([&](Inbox& in) {
      for (const auto& d : in.done) {
        if (d.id == want && d.outcome == core::BroadcastOutcome::Delivered) return true;
      }
      return false;
    });
  };
  for (int i = 1; i < 4; ++i) {
    EXPECT_TRUE(eventually([&] {
      return inboxes[i]->with([](Inbox& in) { return !in.broadcasts.empty(); });
    })) << "node " << i;
  }
  EXPECT_TRUE(eventually([&] { return done_with(id); }));
  EXPECT_TRUE(eventually([&] {
    for (auto& n : nodes) {
      if (n->num_queued_broadcasts() != 0) return false;
    }
    return true;
  }));
  for (int i = 1; i < 4; ++i) {
    inboxes[i]->with([&](Inbox& in) {
      ASSERT_EQ(in.broadcasts.size(), 1u) << "node " << i;
      EXPECT_EQ(in.broadcasts[0].payload, payload);
      EXPECT_EQ(in.broadcasts[0].origin, "node-0");
    });
  }
  EXPECT_TRUE(inboxes[0]->with([](Inbox& in) { return in.broadcasts.empty(); }));  // not to its origin
  // Too large for one datagram: refused.
  EXPECT_EQ(nodes[0]->queue_broadcast("", core::Bytes(70000, 1), id).code, core::Errc::too_large);
}

TEST_F(AppData, QueuedBroadcastsEndAsDroppedAtShutdown) {
  start(2);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 20; ++i) {
    uint64_t id = 0;
    ASSERT_TRUE(nodes[0]->queue_broadcast("b" + std::to_string(i), pattern(100, 1), id).ok());
    ids.push_back(id);
  }
  ASSERT_TRUE(nodes[0]->shutdown().ok());
  // Every broadcast got its end before shutdown returned: delivered, or dropped by it.
  inboxes[0]->with([&](Inbox& in) {
    EXPECT_EQ(in.done.size(), ids.size());
    for (const auto& d : in.done) {
      EXPECT_TRUE(d.outcome == core::BroadcastOutcome::Delivered || d.outcome == core::BroadcastOutcome::Dropped);
    }
  });
  EXPECT_EQ(nodes[0]->num_queued_broadcasts(), 0u);
  EXPECT_EQ(nodes[0]->queue_broadcast("", pattern(10, 1), ids[0]).code, core::Errc::state);
}

TEST_F(AppData, BlockingCallsRefuseFromCallbacksNonBlockingOnesWork) {
  std::mutex mu;
  std::shared_ptr<Node> self;
  std::vector<core::Errc> codes;
  std::atomic<bool> done{false};
  Callbacks cb;
  cb.on_event = [&](const core::Event& e) {
    std::shared_ptr<Node> n;
    {
      std::lock_guard<std::mutex> l(mu);
      n = self;
    }
    if (!n || e.node.name != "b" || done.exchange(true)) return;
    std::lock_guard<std::mutex> l(mu);
    codes.push_back(n->update_meta({1}, std::chrono::seconds(1)).code);
    codes.push_back(n->update_node(std::chrono::seconds(1)).code);
    codes.push_back(n->send_reliable("b", {1}).code);
    codes.push_back(n->send_best_effort("b", {'h', 'i'}).code);
    uint64_t id = 0;
    codes.push_back(n->queue_broadcast("", {1}, id).code);
  };
  auto a = make_node(rt, fast_options("a"), cb);
  ASSERT_TRUE(a);
  {
    std::lock_guard<std::mutex> l(mu);
    self = a;
  }
  auto b = add(fast_options("b"));
  ASSERT_TRUE(b);
  Status st;
  ASSERT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  {
    std::lock_guard<std::mutex> l(mu);
    ASSERT_EQ(codes.size(), 5u);
    EXPECT_EQ(codes[0], core::Errc::state);
    EXPECT_EQ(codes[1], core::Errc::state);
    EXPECT_EQ(codes[2], core::Errc::state);
    EXPECT_EQ(codes[3], core::Errc::ok);
    EXPECT_EQ(codes[4], core::Errc::ok);
    self.reset();
  }
  EXPECT_TRUE(eventually([&] { return inboxes[0]->has_message({'h', 'i'}); }));
  a.reset();
}

TEST_F(AppData, MetricSamplesReachTheListener) {
  // Shared with the listener: the node lives in the fixture until TearDown, so its callbacks
  // may still run after this body returns (ASan caught a stack-use-after-return).
  struct Seen {
    std::mutex mu;
    std::map<std::string, int> count;
  };
  auto shared = std::make_shared<Seen>();
  std::mutex& mu = shared->mu;
  std::map<std::string, int>& seen = shared->count;
  auto o = fast_options("m");
  Callbacks cb;
  cb.on_metric = [shared](const core::MetricSample& m) {
    std::lock_guard<std::mutex> l(shared->mu);
    ++shared->count[m.name];
  };
  auto m = make_node(rt, o, cb);
  ASSERT_TRUE(m);
  nodes.push_back(m);
  auto other = add(fast_options("other"));
  ASSERT_TRUE(other);
  Status st;
  ASSERT_EQ(other->join({addr_of(*m)}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> l(mu);
    return seen["memberlist.udp.sent"] > 0 && seen["memberlist.udp.received"] > 0 && seen["memberlist.tcp.accept"] > 0 &&
           seen["memberlist.tcp.received"] > 0 &&
           seen["memberlist.msg.alive"] + seen["memberlist.msg.ping"] + seen["memberlist.msg.ack"] > 0;
  }));
}

// The benchmark's finding: leave() returned before the datagrams carrying the leave were
// sent, and a shutdown right after dropped them, so some peers saw a failure instead.
// A broadcast is sent retransmit_mult * ceil(log10(n + 1)) = 4 times here, partly
// piggybacked, so a peer can miss the leave by chance from every source (a few percent
// of runs with the fast test timers); gossip to every peer, a longer suspicion and
// frequent push/pulls let the leave reach everyone who missed it before a suspicion of
// the stopped node ends, unless the datagrams carrying it were dropped (the bug).
TEST_F(AppData, LeaveThenImmediateShutdownIsSeenAsLeft) {
  auto tweak = [](Options& o) {
    o.core.gossip_nodes = 4;
    o.core.suspicion_mult = 6;
    o.core.push_pull_interval = std::chrono::milliseconds(300);
  };
  start(4, tweak);
  for (int round = 0; round < 3; ++round) {
    std::string name = "leaver-" + std::to_string(round);
    auto o = fast_options(name);
    tweak(o);
    auto leaver = add(o);
    ASSERT_TRUE(leaver);
    Status st;
    ASSERT_EQ(leaver->join({addr_of(*nodes[0])}, st), 1) << st.message;
    ASSERT_TRUE(eventually([&] {
      for (int i = 0; i < 4; ++i) {
        if (!has_member(*nodes[i], name)) return false;
      }
      return leaver->num_members() == 5;
    }));
    st = leaver->leave(std::chrono::seconds(20));
    ASSERT_TRUE(st.ok()) << st.message;
    ASSERT_TRUE(leaver->shutdown().ok());
    for (int i = 0; i < 4; ++i) {
      EXPECT_TRUE(eventually([&] { return inboxes[i]->saw(EventType::Leave, name, NodeState::Left); }))
          << "node-" << i << " did not see " << name << " leave";
      EXPECT_FALSE(inboxes[i]->saw(EventType::Leave, name, NodeState::Dead)) << "node-" << i << " saw " << name << " die";
    }
  }
}

}  // namespace
}  // namespace memberlist::runtime::test
