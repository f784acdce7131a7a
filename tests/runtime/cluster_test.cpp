// Small clusters on 127.0.0.1 (and [::1]): join, failure, leave, ping, callbacks.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <condition_variable>

#include "helpers.h"
#include "wire/keyring.h"

namespace memberlist::runtime::test {
namespace {

using core::EventType;
using core::NodeState;

class Cluster : public ::testing::Test {
 protected:
  std::shared_ptr<Runtime> rt = std::make_shared<Runtime>(2);
  std::vector<std::shared_ptr<Node>> nodes;
  std::vector<std::unique_ptr<Recorder>> recorders;

  void TearDown() override {
    nodes.clear();  // every Node before the Runtime
  }

  // Creates `n` nodes and joins each to the first; waits until everyone sees everyone.
  void start(int n, const std::string& bind = "127.0.0.1") {
    for (int i = 0; i < n; ++i) {
      recorders.push_back(std::make_unique<Recorder>());
      auto node = make_node(rt, fast_options("node-" + std::to_string(i), bind), recorders.back()->callbacks());
      ASSERT_TRUE(node);
      nodes.push_back(node);
    }
    for (int i = 1; i < n; ++i) {
      Status st;
      EXPECT_EQ(nodes[i]->join({addr_of(*nodes[0])}, st), 1) << st.message;
      EXPECT_TRUE(st.ok()) << st.message;
    }
    ASSERT_TRUE(eventually([&] {
      for (auto& node : nodes) {
        if (node->num_members() != static_cast<size_t>(n)) return false;
      }
      return true;
    })) << "cluster did not converge";
  }
};

TEST_F(Cluster, JoinAndConverge) {
  start(4);
  for (auto& node : nodes) {
    EXPECT_EQ(node->members().size(), 4u);
    EXPECT_EQ(node->local_node().state, NodeState::Alive);
    EXPECT_NE(node->advertise_address().port, 0);
    EXPECT_TRUE(node->advertise_address().is_v4());
  }
  // Every node saw a Join for every node, itself included.
  for (auto& r : recorders) {
    EXPECT_TRUE(eventually([&] {
      for (int i = 0; i < 4; ++i) {
        if (!r->saw(EventType::Join, "node-" + std::to_string(i), NodeState::Alive)) return false;
      }
      return true;
    }));
  }
}

TEST_F(Cluster, JoinCountsSuccessesAndFailures) {
  start(2);
  auto extra = make_node(rt, fast_options("extra"));
  ASSERT_TRUE(extra);
  nodes.push_back(extra);
  // A closed port (the runtime's own bound port is taken, so use an unused one), a bad
  // entry and two good ones.
  Status st;
  int n = extra->join({"127.0.0.1:1", "not an address:x", "node-0/" + addr_of(*nodes[0]), addr_of(*nodes[1])}, st);
  EXPECT_EQ(n, 2);
  EXPECT_TRUE(st.ok()) << st.message;
  // Nothing reachable: an error that lists the failures.
  auto lonely = make_node(rt, fast_options("lonely"));
  ASSERT_TRUE(lonely);
  nodes.push_back(lonely);
  n = lonely->join({"127.0.0.1:1", "[bad"}, st);
  EXPECT_EQ(n, 0);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message.find("127.0.0.1:1"), std::string::npos) << st.message;
  EXPECT_NE(st.message.find("[bad"), std::string::npos) << st.message;
}

TEST_F(Cluster, ShutdownNodeIsMarkedDead) {
  start(3);
  ASSERT_TRUE(nodes[2]->shutdown().ok());
  EXPECT_TRUE(nodes[2]->shutdown().ok());  // idempotent
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(eventually([&] { return !has_member(*nodes[i], "node-2"); }));
    EXPECT_TRUE(eventually([&] { return recorders[i]->saw(EventType::Leave, "node-2", NodeState::Dead); }));
  }
  EXPECT_EQ(nodes[0]->num_members(), 2u);
}

TEST_F(Cluster, LeaveIsSeenAsLeft) {
  start(3);
  auto st = nodes[2]->leave(std::chrono::seconds(20));
  EXPECT_TRUE(st.ok()) << st.message;
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(eventually([&] { return recorders[i]->saw(EventType::Leave, "node-2", NodeState::Left); }));
    EXPECT_TRUE(eventually([&] { return !has_member(*nodes[i], "node-2"); }));
  }
  // A node that left cannot join again.
  Status js;
  EXPECT_EQ(nodes[2]->join({addr_of(*nodes[0])}, js), 0);
  EXPECT_EQ(js.code, core::Errc::state) << js.message;
}

TEST_F(Cluster, PingReturnsRtt) {
  start(2);
  Duration rtt{-1};
  auto st = nodes[0]->ping("node-1", rtt);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_GE(rtt.count(), 0);
  EXPECT_LT(rtt, std::chrono::seconds(30));
  EXPECT_EQ(nodes[0]->ping("nobody", rtt).code, core::Errc::not_found);
  // A node that stopped answering: timeout.
  ASSERT_TRUE(nodes[1]->shutdown().ok());
  st = nodes[0]->ping("node-1", rtt);
  if (!st.ok()) {
    EXPECT_TRUE(st.code == core::Errc::timeout || st.code == core::Errc::not_found) << st.message;
  }
  // After shutdown the blocking calls refuse.
  ASSERT_TRUE(nodes[0]->shutdown().ok());
  EXPECT_EQ(nodes[0]->ping("node-0", rtt).code, core::Errc::state);
  EXPECT_EQ(nodes[0]->leave(std::chrono::seconds(1)).code, core::Errc::state);
  EXPECT_GE(nodes[0]->members().size(), 1u);  // queries still answer
}

bool have_ipv6_loopback() {
  boost::asio::io_context ioc;
  boost::asio::ip::udp::socket s(ioc);
  boost::system::error_code ec;
  s.open(boost::asio::ip::udp::v6(), ec);
  if (!ec) s.bind({boost::asio::ip::make_address("::1"), 0}, ec);
  return !ec;
}

TEST_F(Cluster, IPv6Loopback) {
  if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  start(3, "::1");
  for (auto& node : nodes) {
    EXPECT_FALSE(node->advertise_address().is_v4());
    EXPECT_EQ(node->advertise_address().host_string(), "::1");
  }
  Duration rtt{};
  EXPECT_TRUE(nodes[0]->ping("node-2", rtt).ok());
}

TEST_F(Cluster, DualStackAnyAddressTalksToIPv4) {
  if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 on this machine";
  start(2);
  auto o = fast_options("dual", "::");
  o.advertise_addr = "127.0.0.1";  // reachable by the IPv4-only nodes
  auto dual = make_node(rt, o);
  ASSERT_TRUE(dual);
  nodes.push_back(dual);
  Status st;
  EXPECT_EQ(dual->join({addr_of(*nodes[0])}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return dual->num_members() == 3 && nodes[1]->num_members() == 3; }));
  Duration rtt{};
  EXPECT_TRUE(nodes[1]->ping("dual", rtt).ok());
}

TEST(Framing, SecuredClusterConvergesAndOthersStayOut) {
  auto rt = std::make_shared<Runtime>(2);
  auto keyring = std::make_shared<wire::Keyring>();
  ASSERT_TRUE(keyring->install(std::vector<uint8_t>(32, 7)).ok());
  auto secured = [&](const std::string& name) {
    auto o = fast_options(name);
    o.framing.label = "blue";
    o.framing.crc = true;
    o.framing.compress = true;
    o.framing.keyring = keyring;
    return o;
  };
  auto a = make_node(rt, secured("a"));
  auto b = make_node(rt, secured("b"));
  auto c = make_node(rt, secured("c"));
  ASSERT_TRUE(a && b && c);
  Status st;
  EXPECT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  EXPECT_EQ(c->join({addr_of(*a)}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return a->num_members() == 3 && b->num_members() == 3 && c->num_members() == 3; }));
  Duration rtt{};
  EXPECT_TRUE(b->ping("c", rtt).ok());

  // Another cluster's label: refused, counted, and nobody's membership changes.
  auto o = secured("red");
  o.framing.label = "red";
  auto red = make_node(rt, o);
  ASSERT_TRUE(red);
  EXPECT_EQ(red->join({addr_of(*a)}, st), 0);
  EXPECT_FALSE(st.ok());
  // The right label but no keys: plaintext is refused by the secured nodes.
  o = fast_options("plain");
  o.framing.label = "blue";
  auto plain = make_node(rt, o);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->join({addr_of(*a)}, st), 0);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(eventually([&] {
    auto rs = a->runtime_stats();
    return rs.frame_error(wire::FrameError::label_mismatch) > 0 && rs.frame_error(wire::FrameError::not_encrypted) > 0;
  }));
  EXPECT_EQ(a->num_members(), 3u);
  EXPECT_EQ(red->num_members(), 1u);
  EXPECT_EQ(plain->num_members(), 1u);
}

TEST(Node, NotificationsAndTransportMetrics) {
  auto rt = std::make_shared<Runtime>(2);
  std::atomic<int> ping_completes{0};
  Callbacks cb;
  cb.on_notification = [&](const core::Notification& n) {
    if (std::holds_alternative<core::PingComplete>(n)) ++ping_completes;
  };
  auto oa = fast_options("a");
  oa.core.delegate = std::make_shared<core::Delegate>();  // PingComplete needs a delegate
  auto a = make_node(rt, oa, cb);
  auto b = make_node(rt, fast_options("b"));
  ASSERT_TRUE(a && b);
  Status st;
  ASSERT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  // a probes b every probe interval: each direct ack is a PingComplete notification.
  EXPECT_TRUE(eventually([&] { return ping_completes > 0; }));
  auto value = [](const std::vector<core::MetricValue>& vs, const std::string& name) {
    double v = 0;
    for (const auto& m : vs) {
      if (m.name == name) v += m.value;
    }
    return v;
  };
  EXPECT_TRUE(eventually([&] {
    auto m = a->metrics();
    return value(m, "memberlist.udp.sent") > 0 && value(m, "memberlist.udp.received") > 0 &&
           value(m, "memberlist.tcp.accept") >= 1 && value(m, "memberlist.tcp.sent") > 0;
  }));
  EXPECT_GE(value(b->metrics(), "memberlist.tcp.connect"), 1);
  EXPECT_NE(a->prometheus().find("memberlist_udp_sent"), std::string::npos);
}

TEST(Node, BadOptionsAreRefused) {
  auto rt = std::make_shared<Runtime>(1);
  Status st;
  auto o = fast_options("x");
  o.bind_addr = "not-an-ip";
  EXPECT_FALSE(Node::create(rt, o, {}, st));
  EXPECT_EQ(st.code, core::Errc::invalid);
  o = fast_options("");
  EXPECT_FALSE(Node::create(rt, o, {}, st));
  EXPECT_EQ(st.code, core::Errc::invalid);
  o = fast_options("x");
  o.framing.label = std::string(300, 'l');  // longer than a label can be
  EXPECT_FALSE(Node::create(rt, o, {}, st));
  EXPECT_EQ(st.code, core::Errc::invalid);
  o = fast_options("x");
  o.advertise_addr = "nope";
  EXPECT_FALSE(Node::create(rt, o, {}, st));
  EXPECT_EQ(st.code, core::Errc::invalid);
  // A port in use: bind fails with an I/O error.
  auto a = make_node(rt, fast_options("a"));
  ASSERT_TRUE(a);
  o = fast_options("b");
  o.bind_port = a->advertise_address().port;
  EXPECT_FALSE(Node::create(rt, o, {}, st));
  EXPECT_EQ(st.code, core::Errc::io) << st.message;
}

TEST(Node, AdvertiseAddressChoice) {
  auto rt = std::make_shared<Runtime>(1);
  auto o = fast_options("any", "0.0.0.0");
  auto n = make_node(rt, o);
  ASSERT_TRUE(n);
  auto adv = n->advertise_address();
  EXPECT_TRUE(adv.is_v4());
  EXPECT_NE(adv.host_string(), "0.0.0.0");
  o = fast_options("explicit");
  o.advertise_addr = "192.0.2.1";
  o.advertise_port = 4242;
  auto m = make_node(rt, o);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->advertise_address(), core::Address::v4(192, 0, 2, 1, 4242));
  EXPECT_EQ(m->local_node().addr, core::Address::v4(192, 0, 2, 1, 4242));
}

// ---- callbacks ------------------------------------------------------------------------

// Lets a callback reach its own node once create() has returned.
struct Self {
  std::mutex mu;
  std::shared_ptr<Node> node;
  std::shared_ptr<Node> get() {
    std::lock_guard<std::mutex> l(mu);
    return node;
  }
  void set(std::shared_ptr<Node> n) {
    std::lock_guard<std::mutex> l(mu);
    node = std::move(n);
  }
};

TEST(Callbacks, MembersFromCallbackDoesNotDeadlock) {
  auto rt = std::make_shared<Runtime>(2);
  Self self;
  std::atomic<int> calls{0};
  std::atomic<bool> in_cb_seen{false};
  Callbacks cb;
  cb.on_event = [&](const core::Event&) {
    if (auto n = self.get()) {
      (void)n->members();
      (void)n->local_node();
      (void)n->health_score();
      (void)n->stats();
      in_cb_seen = in_cb_seen || n->in_callback();
      ++calls;
    }
  };
  cb.on_log = [&](core::LogLevel, const std::string&) {
    if (auto n = self.get()) (void)n->num_members();
  };
  cb.log_level = core::LogLevel::Debug;
  auto a = make_node(rt, fast_options("a"), cb);
  ASSERT_TRUE(a);
  self.set(a);
  auto b = make_node(rt, fast_options("b"));
  ASSERT_TRUE(b);
  Status st;
  EXPECT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return calls > 0 && a->num_members() == 2; }));
  EXPECT_TRUE(in_cb_seen);
  EXPECT_FALSE(a->in_callback());
  self.set(nullptr);
}

TEST(Callbacks, BlockingCallsFromCallbackReturnState) {
  auto rt = std::make_shared<Runtime>(2);
  Self self;
  std::mutex mu;
  std::vector<core::Errc> codes;
  std::atomic<bool> done{false};
  Callbacks cb;
  cb.on_event = [&](const core::Event& e) {
    auto n = self.get();
    if (!n || e.node.name != "b" || done) return;
    Status st;
    EXPECT_EQ(n->join({"127.0.0.1:1"}, st), 0);
    Duration rtt{};
    std::lock_guard<std::mutex> l(mu);
    codes.push_back(st.code);
    codes.push_back(n->ping("b", rtt).code);
    codes.push_back(n->leave(std::chrono::seconds(1)).code);
    codes.push_back(n->shutdown().code);
    done = true;
  };
  auto a = make_node(rt, fast_options("a"), cb);
  ASSERT_TRUE(a);
  self.set(a);
  auto b = make_node(rt, fast_options("b"));
  ASSERT_TRUE(b);
  Status st;
  EXPECT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(codes.size(), 4u);
  for (auto c : codes) EXPECT_EQ(c, core::Errc::state);
  // None of them took effect: a is still running and in the cluster.
  EXPECT_EQ(a->local_node().state, NodeState::Alive);
  Duration rtt{};
  EXPECT_TRUE(a->ping("b", rtt).ok());
  self.set(nullptr);
}

TEST(Callbacks, LogLinesAreFilteredByLevel) {
  auto rt = std::make_shared<Runtime>(1);
  std::mutex mu;
  std::vector<std::pair<core::LogLevel, std::string>> lines;
  Callbacks cb;
  cb.on_log = [&](core::LogLevel l, const std::string& s) {
    std::lock_guard<std::mutex> g(mu);
    lines.emplace_back(l, s);
  };
  cb.log_level = core::LogLevel::Info;
  auto a = make_node(rt, fast_options("a"), cb);
  ASSERT_TRUE(a);
  // Some input that logs at debug (a junk datagram) and at warn/info.
  Status st;
  EXPECT_EQ(a->join({"127.0.0.1:1"}, st), 0);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> g(mu);
    return !lines.empty();
  }));
  ASSERT_TRUE(a->shutdown().ok());
  std::lock_guard<std::mutex> g(mu);
  bool listening = false;
  for (auto& [l, s] : lines) {
    EXPECT_GE(l, core::LogLevel::Info) << s;
    EXPECT_FALSE(s.empty());
    EXPECT_NE(s.back(), '\n');
    listening = listening || s.find("listening") != std::string::npos;
  }
  EXPECT_TRUE(listening);
}

TEST(Callbacks, NoCallbackAfterShutdownReturns) {
  auto rt = std::make_shared<Runtime>(2);
  std::atomic<bool> stopped{false};
  std::atomic<int> late{0}, seen{0};
  Callbacks cb;
  cb.on_event = [&](const core::Event&) {
    if (stopped) ++late;
    ++seen;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // widen the window
  };
  cb.on_log = [&](core::LogLevel, const std::string&) {
    if (stopped) ++late;
  };
  cb.log_level = core::LogLevel::Trace;
  auto a = make_node(rt, fast_options("a"), cb);
  auto b = make_node(rt, fast_options("b"));
  auto c = make_node(rt, fast_options("c"));
  ASSERT_TRUE(a && b && c);
  Status st;
  b->join({addr_of(*a)}, st);
  c->join({addr_of(*a)}, st);
  ASSERT_TRUE(a->shutdown().ok());
  stopped = true;
  // b and c keep sending to a's closed ports; give them the time of a few probe rounds.
  EXPECT_TRUE(eventually([&] { return b->stats().probe_failures > 0; }));
  EXPECT_GT(seen.load(), 0);
  EXPECT_EQ(late.load(), 0);
}

TEST(Callbacks, NodeDestroyedInsideItsOwnCallback) {
  auto rt = std::make_shared<Runtime>(2);
  Self self;
  std::atomic<bool> destroyed{false};
  Callbacks cb;
  cb.on_event = [&](const core::Event& e) {
    if (e.node.name != "b") return;
    if (auto n = self.get()) {
      self.set(nullptr);
      n.reset();  // the last reference: ~Node runs here, on the callback thread
      destroyed = true;
    }
  };
  auto a = make_node(rt, fast_options("a"), cb);
  ASSERT_TRUE(a);
  auto port = a->advertise_address().port;
  self.set(std::move(a));
  auto b = make_node(rt, fast_options("b"));
  ASSERT_TRUE(b);
  // a learns of b while it handles b's push/pull; its callback may then close a before the
  // reply is written, so this join may or may not succeed.
  Status st;
  b->join({"127.0.0.1:" + std::to_string(port)}, st);
  EXPECT_TRUE(eventually([&] { return destroyed.load(); }));
  // a's sockets are closed: b detects it as failed.
  EXPECT_TRUE(eventually([&] { return b->num_members() == 1; }));
}

// A Delegate hook runs inside the core, under the node's lock: queries from it work,
// blocking calls refuse instead of deadlocking.
struct QueryingDelegate : core::Delegate {
  Self* self = nullptr;
  std::atomic<int> queries{0};
  std::atomic<int> refused{0};
  core::Status notify_alive(const core::NodeInfo&) override {
    if (auto n = self->get()) {
      (void)n->members();
      (void)n->local_node();
      (void)n->stats();
      (void)n->metrics();
      ++queries;
      Status st;
      Duration rtt{};
      if (n->join({"127.0.0.1:1"}, st) == 0 && st.code == core::Errc::state &&
          n->ping("x", rtt).code == core::Errc::state && n->shutdown().code == core::Errc::state) {
        ++refused;
      }
    }
    return core::Status::success();
  }
};

TEST(Callbacks, DelegateHookMayQueryItsNode) {
  auto rt = std::make_shared<Runtime>(2);
  Self self;
  auto delegate = std::make_shared<QueryingDelegate>();
  delegate->self = &self;
  auto o = fast_options("a");
  o.core.delegate = delegate;
  auto a = make_node(rt, o);
  ASSERT_TRUE(a);
  self.set(a);
  auto b = make_node(rt, fast_options("b"));
  ASSERT_TRUE(b);
  Status st;
  EXPECT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return delegate->queries > 0 && a->num_members() == 2; }));
  EXPECT_EQ(delegate->refused.load(), delegate->queries.load());
  self.set(nullptr);
}

// A host callback that blocks (a full channel, a slow logger, a lock in the application) holds
// one callback thread, never the threads that answer probes: for the 10 s it blocks, no node
// of the 5 is suspected, and the other nodes' notifications still arrive.
TEST(Callbacks, HostCallbackBlockingTenSecondsSuspectsNobody) {
  auto rt = std::make_shared<Runtime>(2);
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false, blocking = false, released = false, blocked_once = false;
  bool delivered_while_blocked = false;
  auto is_update_of = [](const core::Event& e, const std::string& name) {
    return e.type == EventType::Update && e.node.name == name;
  };
  Callbacks blocker;
  blocker.on_event = [&](const core::Event& e) {
    std::unique_lock<std::mutex> l(mu);
    if (!armed || blocked_once || !is_update_of(e, "n1")) return;
    blocked_once = blocking = true;
    cv.wait_for(l, 10s, [&] { return released; });
    blocking = false;
  };
  Callbacks witness;  // another node's notifications, while the first one's callback blocks
  witness.on_event = [&](const core::Event& e) {
    std::lock_guard<std::mutex> l(mu);
    if (blocking && is_update_of(e, "n3")) delivered_while_blocked = true;
  };
  std::vector<std::shared_ptr<Node>> ns;
  for (int i = 0; i < 5; ++i) {
    // Tolerant timeouts: this is about a stalled host, not about a loaded machine.
    auto o = fast_options("n" + std::to_string(i));
    o.core.probe_interval = 1s;
    o.core.probe_timeout = 500ms;
    o.core.suspicion_mult = 4;
    ns.push_back(make_node(rt, o, i == 0 ? blocker : i == 2 ? witness : Callbacks{}));
    ASSERT_TRUE(ns.back());
  }
  Status st;
  for (int i = 1; i < 5; ++i) EXPECT_EQ(ns[i]->join({addr_of(*ns[0])}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] {
    return std::all_of(ns.begin(), ns.end(), [](auto& n) { return n->num_members() == 5; });
  })) << "cluster did not converge";
  {
    std::lock_guard<std::mutex> l(mu);
    armed = true;
  }
  ASSERT_TRUE(ns[1]->update_meta(core::Bytes{'x'}, 5s).ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> l(mu);
    return blocked_once;
  })) << "n0 never got n1's update";
  ASSERT_TRUE(ns[3]->update_meta(core::Bytes{'y'}, 5s).ok());  // news for n2 during the block
  // The block ends by itself after 10 s; meanwhile the protocol runs on.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> l(mu);
    return !blocking;
  }, 60s));
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_TRUE(delivered_while_blocked) << "n2's notification waited for n0's callback";
  }
  for (auto& n : ns) {
    EXPECT_EQ(n->stats().suspicions, 0u) << n->local_node().name << " suspected someone";
    EXPECT_EQ(n->stats().probe_failures, 0u) << n->local_node().name;
    EXPECT_EQ(n->num_members(), 5u);
  }
  {
    std::lock_guard<std::mutex> l(mu);
    released = true;
  }
  cv.notify_all();
}

TEST(Runtime, ManyNodesShareOnePoolAndDestroyInAnyOrder) {
  auto rt = std::make_shared<Runtime>(2);
  std::vector<std::shared_ptr<Node>> ns;
  for (int i = 0; i < 5; ++i) ns.push_back(make_node(rt, fast_options("n" + std::to_string(i))));
  Status st;
  for (int i = 1; i < 5; ++i) ns[i]->join({addr_of(*ns[0])}, st);
  // Destroyed without shutdown, while the protocol runs.
  ns.erase(ns.begin() + 2);
  ns.erase(ns.begin());
  rt.reset();  // the nodes still hold the runtime
  ns.clear();
  SUCCEED();
}

}  // namespace
}  // namespace memberlist::runtime::test
