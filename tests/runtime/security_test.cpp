// Security on real sockets: encryption seen from the outside, wrong or missing keys, key
// rotation and the plaintext-to-encrypted switch on running clusters, labels, the IP
// allow-list, and every bound on what the network may make a node hold.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <thread>

#include "helpers.h"
#include "wire/wire.h"

namespace memberlist::runtime::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using core::EventType;
using core::NodeState;

const std::vector<uint8_t> kKeyA(16, 0xA1);
const std::vector<uint8_t> kKeyB(32, 0xB2);
const std::vector<uint8_t> kKeyWrong(16, 0x5E);

// Counts Leave events (failures or departures) seen by a node.
struct LeaveCounter {
  std::atomic<int> leaves{0};
  Callbacks callbacks() {
    Callbacks cb;
    cb.on_event = [this](const core::Event& e) {
      if (e.type == EventType::Leave) ++leaves;
    };
    return cb;
  }
};

class Secure : public ::testing::Test {
 protected:
  std::shared_ptr<Runtime> rt = std::make_shared<Runtime>(2);
  std::vector<std::unique_ptr<LeaveCounter>> counters;
  std::vector<std::shared_ptr<Node>> nodes;

  void TearDown() override { nodes.clear(); }

  // n nodes, each with its own keyring holding `key` (none if empty), joined to the first.
  void start(int n, const std::vector<uint8_t>& key) {
    for (int i = 0; i < n; ++i) {
      auto o = fast_options("node-" + std::to_string(i));
      if (!key.empty()) {
        o.framing.keyring = std::make_shared<wire::Keyring>();
        ASSERT_TRUE(o.framing.keyring->install(key).ok());
      }
      counters.push_back(std::make_unique<LeaveCounter>());
      auto node = make_node(rt, o, counters.back()->callbacks());
      ASSERT_TRUE(node);
      nodes.push_back(node);
    }
    for (int i = 1; i < n; ++i) {
      Status st;
      ASSERT_EQ(nodes[i]->join({addr_of(*nodes[0])}, st), 1) << st.message;
    }
    ASSERT_TRUE(all_see(n)) << "cluster did not converge";
  }

  bool all_see(int n) {
    return eventually([&] {
      for (auto& node : nodes) {
        if (node->num_members() != static_cast<size_t>(n)) return false;
      }
      return true;
    });
  }

  // Lets the protocol run: every node completes `rounds` more probes.
  void run_probes(uint64_t rounds) {
    std::vector<uint64_t> before;
    for (auto& n : nodes) before.push_back(n->stats().probes);
    ASSERT_TRUE(eventually([&] {
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (nodes[i]->stats().probes < before[i] + rounds) return false;
      }
      return true;
    }));
  }

  int leaves() {
    int total = 0;
    for (auto& c : counters) total += c->leaves;
    return total;
  }
  uint64_t suspicions() {
    uint64_t total = 0;
    for (auto& n : nodes) total += n->stats().suspicions;
    return total;
  }
};

// A port free for both UDP and TCP on 127.0.0.1 (for a node whose advertised port differs).
uint16_t free_port() {
  asio::io_context ioc;
  for (int i = 0; i < 50; ++i) {
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    uint16_t port = a.local_endpoint().port();
    udp::socket u(ioc);
    boost::system::error_code ec;
    u.open(udp::v4(), ec);
    u.bind(udp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) return port;
  }
  return 0;
}

// A UDP relay in front of a node: records every datagram and forwards it.
class Relay {
 public:
  explicit Relay(uint16_t target) : sock_(ioc_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
                                    target_(asio::ip::make_address("127.0.0.1"), target) {
    receive();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Relay() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return sock_.local_endpoint().port(); }
  size_t count() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_.size();
  }
  bool contains(const std::string& text) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& d : seen_) {
      if (std::search(d.begin(), d.end(), text.begin(), text.end()) != d.end()) return true;
    }
    return false;
  }

 private:
  void receive() {
    sock_.async_receive_from(asio::buffer(buf_), from_, [this](boost::system::error_code ec, size_t n) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        {
          std::lock_guard<std::mutex> l(mu_);
          seen_.emplace_back(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n));
        }
        boost::system::error_code ignored;
        sock_.send_to(asio::buffer(buf_.data(), n), target_, 0, ignored);
      }
      receive();
    });
  }
  asio::io_context ioc_;
  udp::socket sock_;
  udp::endpoint target_;
  udp::endpoint from_;
  std::array<uint8_t, 65536> buf_{};
  std::mutex mu_;
  std::vector<std::vector<uint8_t>> seen_;
  std::thread thread_;
};

// Two nodes, b reached through a relay; returns whether the relay saw the node names.
bool relay_sees_names(const std::shared_ptr<Runtime>& rt, bool encrypted) {
  auto keyed = [&](Options o) {
    if (encrypted) {
      o.framing.keyring = std::make_shared<wire::Keyring>();
      EXPECT_TRUE(o.framing.keyring->install(kKeyB).ok());
    }
    return o;
  };
  auto a = make_node(rt, keyed(fast_options("alpha-node")));
  uint16_t port = free_port();
  EXPECT_NE(port, 0);
  Relay relay(port);
  auto ob = keyed(fast_options("bravo-node"));
  ob.bind_port = port;
  ob.advertise_addr = "127.0.0.1";
  ob.advertise_port = relay.port();  // a sends to b through the relay
  auto b = make_node(rt, ob);
  if (!a || !b) return false;
  Status st;
  EXPECT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  // Pings, gossip and acks naming both nodes pass the relay.
  EXPECT_TRUE(eventually([&] { return a->num_members() == 2 && b->num_members() == 2 && relay.count() >= 30; }));
  EXPECT_GE(a->stats().probes, 1u);
  return relay.contains("alpha-node") || relay.contains("bravo-node");
}

TEST_F(Secure, EncryptedClusterShowsNoPlaintextOnTheWire) {
  // The check can fail: without a key the relay sees the names.
  EXPECT_TRUE(relay_sees_names(rt, false));
  EXPECT_FALSE(relay_sees_names(rt, true));
}

TEST_F(Secure, WrongKeyOrNoKeyCannotJoinAndDisturbsNobody) {
  start(3, kKeyA);
  for (const auto& key : {kKeyWrong, std::vector<uint8_t>{}}) {
    auto o = fast_options(key.empty() ? "no-key" : "wrong-key");
    if (!key.empty()) {
      o.framing.keyring = std::make_shared<wire::Keyring>();
      ASSERT_TRUE(o.framing.keyring->install(key).ok());
    }
    auto intruder = make_node(rt, o);
    ASSERT_TRUE(intruder);
    Status st;
    EXPECT_EQ(intruder->join({addr_of(*nodes[0]), addr_of(*nodes[1])}, st), 0);
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(intruder->num_members(), 1u);
  }
  run_probes(3);
  for (auto& n : nodes) EXPECT_EQ(n->num_members(), 3u);
  EXPECT_EQ(leaves(), 0);
  auto rs = nodes[0]->runtime_stats();
  EXPECT_GT(rs.frame_error(wire::FrameError::decrypt_failed) + rs.frame_error(wire::FrameError::not_encrypted), 0u);
}

TEST_F(Secure, KeyRotationKeepsEveryMember) {
  start(5, kKeyA);
  uint64_t suspicions_before = suspicions();
  for (auto& n : nodes) ASSERT_TRUE(n->keyring_add(kKeyB).ok());
  run_probes(3);
  // The primary key cannot be removed.
  EXPECT_EQ(nodes[0]->keyring_remove(kKeyA).code, core::Errc::rejected);
  for (auto& n : nodes) ASSERT_TRUE(n->keyring_use(kKeyB).ok());
  run_probes(3);
  for (auto& n : nodes) ASSERT_TRUE(n->keyring_remove(kKeyA).ok());
  run_probes(5);
  for (auto& n : nodes) {
    EXPECT_EQ(n->num_members(), 5u);
    EXPECT_EQ(n->keyring_keys(), std::vector<core::Bytes>{kKeyB});
  }
  EXPECT_EQ(leaves(), 0);
  EXPECT_EQ(suspicions(), suspicions_before) << "a false suspicion during the rotation";
  EXPECT_EQ(nodes[0]->keyring_use(kKeyA).code, core::Errc::not_found);
  EXPECT_EQ(nodes[0]->keyring_add(std::vector<uint8_t>(7, 1)).code, core::Errc::invalid);
  // A node with only the old key is now an outsider.
  auto o = fast_options("old-key");
  o.framing.keyring = std::make_shared<wire::Keyring>();
  ASSERT_TRUE(o.framing.keyring->install(kKeyA).ok());
  auto old = make_node(rt, o);
  ASSERT_TRUE(old);
  Status st;
  EXPECT_EQ(old->join({addr_of(*nodes[0])}, st), 0);
}

TEST_F(Secure, PlaintextClusterSwitchesToEncryption) {
  start(5, {});
  uint64_t suspicions_before = suspicions();
  for (auto& n : nodes) {
    EXPECT_TRUE(n->keyring_keys().empty());
    ASSERT_TRUE(n->set_gossip_verify(false, false).ok());
    ASSERT_TRUE(n->keyring_add(kKeyA).ok());  // creates the keyring
  }
  run_probes(3);
  for (auto& n : nodes) ASSERT_TRUE(n->set_gossip_verify(false, true).ok());
  run_probes(3);
  for (auto& n : nodes) ASSERT_TRUE(n->set_gossip_verify(true, true).ok());
  run_probes(5);
  for (auto& n : nodes) {
    EXPECT_EQ(n->num_members(), 5u);
    EXPECT_EQ(n->keyring_keys(), std::vector<core::Bytes>{kKeyA});
  }
  EXPECT_EQ(leaves(), 0);
  EXPECT_EQ(suspicions(), suspicions_before) << "a false suspicion during the switch";
  // Now plaintext is refused.
  auto plain = make_node(rt, fast_options("plain"));
  ASSERT_TRUE(plain);
  Status st;
  EXPECT_EQ(plain->join({addr_of(*nodes[0])}, st), 0);
  EXPECT_EQ(nodes[0]->num_members(), 5u);
}

TEST_F(Secure, DifferentLabelsDoNotSeeEachOther) {
  auto oa = fast_options("a");
  oa.framing.label = "east";
  auto ob = fast_options("b");
  ob.framing.label = "west";
  auto a = make_node(rt, oa);
  auto b = make_node(rt, ob);
  ASSERT_TRUE(a && b);
  nodes = {a, b};
  Status st;
  EXPECT_EQ(b->join({addr_of(*a)}, st), 0);
  EXPECT_EQ(b->send_to_address(addr_of(*a), {1, 2, 3}).code, core::Errc::ok);
  EXPECT_TRUE(eventually([&] { return a->runtime_stats().frame_error(wire::FrameError::label_mismatch) >= 2; }));
  EXPECT_EQ(a->num_members(), 1u);
  EXPECT_EQ(b->num_members(), 1u);
}

TEST_F(Secure, AllowListRefusesOutsiders) {
  auto oa = fast_options("a");
  oa.allowed_cidrs = {" 127.0.0.1/32 ", "fd00::/8"};
  auto a = make_node(rt, oa);
  auto b = make_node(rt, fast_options("b"));
  // 127.0.0.3 is loopback too on Linux, but outside a's list.
  auto c = make_node(rt, fast_options("c", "127.0.0.3"));
  ASSERT_TRUE(a && b && c);
  nodes = {a, b, c};
  Status st;
  ASSERT_EQ(c->join({addr_of(*b)}, st), 1) << st.message;
  // c's stream to a is closed at once.
  EXPECT_EQ(c->join({addr_of(*a)}, st), 0);
  // b carries c's alive message to a: a's core rejects the address.
  ASSERT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return metric(*a, "memberlist.node.rejected") >= 1; }));
  // c's datagrams to a are dropped.
  EXPECT_EQ(c->send_to_address(addr_of(*a), {1}).code, core::Errc::ok);
  EXPECT_TRUE(eventually([&] { return a->runtime_stats().refused_sources >= 2; }));
  EXPECT_TRUE(eventually([&] { return metric(*a, "memberlist.refused_sources") >= 2; }));
  EXPECT_TRUE(eventually([&] { return has_member(*b, "a") && has_member(*b, "c"); }));
  EXPECT_FALSE(has_member(*a, "c"));
  EXPECT_TRUE(has_member(*a, "b"));

  // Bad entries fail creation, naming the entry.
  for (std::string bad : {"300.1.2.3/8", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "nonsense"}) {
    auto o = fast_options("bad");
    o.allowed_cidrs = {"10.0.0.0/8", bad};
    Status cs;
    EXPECT_FALSE(Node::create(rt, o, {}, cs)) << bad;
    EXPECT_EQ(cs.code, core::Errc::invalid);
    EXPECT_NE(cs.message.find(bad), std::string::npos) << cs.message;
  }
}

// ---- bounds ---------------------------------------------------------------------------------

TEST_F(Secure, InboundConnectionBound) {
  auto o = fast_options("a");
  o.max_inbound_connections = 1;
  o.core.tcp_timeout = std::chrono::seconds(30);  // the idle stream stays open meanwhile
  auto a = make_node(rt, o);
  ASSERT_TRUE(a);
  nodes = {a};
  asio::io_context ioc;
  tcp::endpoint to(asio::ip::make_address("127.0.0.1"), a->advertise_address().port);
  tcp::socket idle(ioc), extra(ioc);
  idle.connect(to);
  ASSERT_TRUE(eventually([&] { return metric(*a, "memberlist.tcp.accept") >= 1; }));
  extra.connect(to);
  // The second one is closed at once: reading ends (EOF or reset), and it is counted.
  std::array<uint8_t, 16> buf{};
  boost::system::error_code ec;
  extra.read_some(asio::buffer(buf), ec);
  EXPECT_TRUE(ec);
  EXPECT_TRUE(eventually([&] { return a->runtime_stats().refused_streams >= 1; }));
  EXPECT_TRUE(eventually([&] { return metric(*a, "memberlist.tcp.refused_streams") >= 1; }));
  o.max_inbound_connections = 0;
  o.core.name = "zero";
  Status cs;
  EXPECT_FALSE(Node::create(rt, o, {}, cs));
}

// Issue 13.6: bulk streams holding every slot of max_concurrent_streams must not get small
// ones (TCP fallback pings, small messages) refused; only other bulk streams are.
TEST_F(Secure, BulkStreamsDoNotStarveSmallOnes) {
  auto o = fast_options("a");
  o.max_concurrent_streams = 1;
  o.core.tcp_timeout = std::chrono::seconds(30);  // the stalled stream stays open meanwhile
  auto delivered = std::make_shared<std::atomic<int>>(0);
  Callbacks cb;
  cb.on_notification = [delivered](const core::Notification& n) {
    if (std::holds_alternative<core::UserMessage>(n)) ++*delivered;
  };
  auto a = make_node(rt, o, cb);
  auto b = make_node(rt, fast_options("b"));
  ASSERT_TRUE(a && b);
  nodes = {a, b};
  Status st;
  ASSERT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  asio::io_context ioc;
  tcp::endpoint to(asio::ip::make_address("127.0.0.1"), a->advertise_address().port);
  // A 100 KiB stream that sends its header and a little of its body, then stalls.
  auto bulk_header = [] {
    const uint32_t len = 100 << 10;
    return std::array<uint8_t, 8>{uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8), uint8_t(len), 1, 2, 3, 4};
  };
  tcp::socket stalled(ioc), second(ioc);
  stalled.connect(to);
  asio::write(stalled, asio::buffer(bulk_header()));
  // Small streams still go through: a TCP ping (as a prober's fallback sends it)...
  {
    auto codec = wire::make_flatbuffers_codec();
    tcp::socket ping(ioc);
    ping.connect(to);
    core::Bytes payload = codec->encode(core::Ping{7, "a", {}, "tester"});
    asio::write(ping, asio::buffer(wire::seal_stream_message(wire::FramingOptions{}, payload)));
    std::array<uint8_t, wire::kStreamHeaderSize> header{};
    asio::read(ping, asio::buffer(header));
    size_t len = 0;
    ASSERT_TRUE(wire::parse_stream_header(wire::FramingOptions{}, header, len).ok());
    core::Bytes body(len), reply;
    asio::read(ping, asio::buffer(body));
    ASSERT_TRUE(wire::open_stream_message(wire::FramingOptions{}, body, reply).ok());
    std::vector<core::Message> msgs;
    ASSERT_TRUE(codec->decode(reply, msgs).ok());
    ASSERT_EQ(msgs.size(), 1u);
    const auto* ack = std::get_if<core::Ack>(&msgs[0]);
    ASSERT_NE(ack, nullptr);
    EXPECT_EQ(ack->seq, 7u);
  }
  // ...and reliable messages.
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(b->send_reliable("a", core::Bytes(200, uint8_t(i))).ok());
  }
  EXPECT_TRUE(eventually([&] { return delivered->load() >= 5; })) << delivered->load();
  EXPECT_EQ(a->runtime_stats().refused_streams, 0u);
  // Another bulk stream is refused after its header: the node closes it and counts it.
  second.connect(to);
  asio::write(second, asio::buffer(bulk_header()));
  std::array<uint8_t, 16> buf{};
  boost::system::error_code ec;
  second.read_some(asio::buffer(buf), ec);
  EXPECT_TRUE(ec);
  EXPECT_TRUE(eventually([&] { return a->runtime_stats().refused_streams >= 1; }));
}

TEST_F(Secure, StreamAndDecompressionBounds) {
  // Shared with the callback: the fixture keeps the node until TearDown, after this body.
  auto delivered = std::make_shared<std::atomic<int>>(0);
  Callbacks cb;
  cb.on_notification = [delivered](const core::Notification& n) {
    if (std::holds_alternative<core::UserMessage>(n)) ++*delivered;
  };
  auto oa = fast_options("a");
  oa.framing.max_stream_message = 64u << 10;
  oa.framing.max_decompressed = 128u << 10;
  auto a = make_node(rt, oa, cb);
  auto ob = fast_options("b");
  ob.framing.compress = true;
  auto b = make_node(rt, ob);
  ASSERT_TRUE(a && b);
  nodes = {a, b};
  Status st;
  ASSERT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return b->num_members() == 2; }));
  // Random-ish bytes do not compress: over max_stream_message.
  std::vector<uint8_t> noisy(200u << 10);
  uint32_t x = 1;
  for (auto& v : noisy) v = static_cast<uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  (void)b->send_reliable("a", noisy);  // written, or cut off by a: either way refused there
  EXPECT_TRUE(eventually([&] { return a->runtime_stats().frame_error(wire::FrameError::too_large) >= 1; }));
  // Zeros compress to almost nothing but inflate past max_decompressed.
  auto before = a->runtime_stats().frame_error(wire::FrameError::too_large) +
                a->runtime_stats().frame_error(wire::FrameError::decompress_failed);
  (void)b->send_reliable("a", std::vector<uint8_t>(1u << 20, 0));
  EXPECT_TRUE(eventually([&] {
    auto rs = a->runtime_stats();
    return rs.frame_error(wire::FrameError::too_large) + rs.frame_error(wire::FrameError::decompress_failed) > before;
  }));
  // A message within the bounds still arrives; the refused ones never did.
  ASSERT_TRUE(b->send_reliable("a", std::vector<uint8_t>(1000, 7)).ok());
  EXPECT_TRUE(eventually([&] { return *delivered == 1; }));
  EXPECT_EQ(*delivered, 1);
}

TEST_F(Secure, PushPullNodeCountBound) {
  auto ob = fast_options("b");
  auto b = make_node(rt, ob);
  auto c = make_node(rt, fast_options("c"));
  auto oa = fast_options("a");
  oa.core.max_push_nodes = 1;
  auto a = make_node(rt, oa);
  ASSERT_TRUE(a && b && c);
  nodes = {a, b, c};
  Status st;
  ASSERT_EQ(c->join({addr_of(*b)}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return b->num_members() == 2; }));
  // b's answer lists 2 nodes (b and c): a refuses it before merging anything.
  EXPECT_EQ(a->join({addr_of(*b)}, st), 0);
  EXPECT_NE(st.message.find("max_push_nodes"), std::string::npos) << st.message;
  EXPECT_EQ(a->num_members(), 1u);
}

// Blocks the node's core (a Delegate hook holds its lock) until released.
struct BlockingDelegate : core::Delegate {
  std::mutex mu;
  std::condition_variable cv;
  bool armed = true, entered = false, released = false;
  std::vector<core::Bytes> get_broadcasts(size_t, size_t) override {
    std::unique_lock<std::mutex> l(mu);
    if (!armed) return {};
    armed = false;
    entered = true;
    cv.notify_all();
    cv.wait_for(l, std::chrono::seconds(60), [&] { return released; });
    return {};
  }
  bool wait_entered() {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(30), [&] { return entered; });
  }
  void release() {
    std::lock_guard<std::mutex> l(mu);
    released = true;
    cv.notify_all();
  }
};

TEST_F(Secure, HandoffQueueBound) {
  auto d = std::make_shared<BlockingDelegate>();
  auto o = fast_options("a");
  o.handoff_queue_depth = 4;
  o.core.delegate = d;
  auto a = make_node(rt, o);
  ASSERT_TRUE(a);
  nodes = {a};
  asio::io_context ioc;
  udp::socket s(ioc, udp::endpoint(udp::v4(), 0));
  udp::endpoint to(asio::ip::make_address("127.0.0.1"), a->advertise_address().port);
  // A ping: answering it builds an ack, which asks the delegate for broadcasts.
  auto ping = wire::make_flatbuffers_codec()->encode(core::Ping{1, "", {}, ""});
  auto sealed = wire::seal_packet({}, ping);
  ASSERT_TRUE(eventually([&] {
    s.send_to(asio::buffer(sealed), to);
    std::unique_lock<std::mutex> l(d->mu);
    return d->cv.wait_for(l, std::chrono::milliseconds(200), [&] { return d->entered; });
  }));
  // The core is stuck: datagrams beyond the queue's depth are dropped and counted.
  for (int i = 0; i < 100; ++i) s.send_to(asio::buffer(sealed), to);
  EXPECT_TRUE(eventually([&] { return a->runtime_stats().handoff_dropped >= 50; }));
  d->release();
  // The node goes on, and the drops are a metric too.
  EXPECT_TRUE(eventually([&] { return a->stats().bad_messages == 0 && a->num_members() == 1; }));
  EXPECT_GE(metric(*a, "memberlist.udp.handoff_dropped"), 50);
  o.handoff_queue_depth = 0;
  o.core.name = "zero";
  Status cs;
  EXPECT_FALSE(Node::create(rt, o, {}, cs));
}

}  // namespace
}  // namespace memberlist::runtime::test
