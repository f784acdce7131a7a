// Nodes in hashicorp mode (Options::wire_format) among themselves, on loopback: membership,
// user messages on both paths, encryption and compression, leave and failure; a raw
// hashicorp ping answered on the wire; a native node cannot join a hashicorp one. The
// interop tests against Go memberlist are in tests/interop.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/write.hpp>
#include <random>

#include "helpers.h"
#include "wire/hashicorp/codec.h"
#include "wire/hashicorp/framing.h"
#include "wire/keyring.h"

namespace memberlist::runtime::test {
namespace {

using core::EventType;
using core::NodeState;

const core::Bytes kKey(32, 7);

struct Inbox {
  std::mutex mu;
  std::vector<std::string> got;
  void add(const core::Notification& n) {
    if (const auto* m = std::get_if<core::UserMessage>(&n)) {
      std::lock_guard<std::mutex> l(mu);
      got.emplace_back(m->payload.begin(), m->payload.end());
    }
  }
  bool has(const std::string& s) {
    std::lock_guard<std::mutex> l(mu);
    return std::find(got.begin(), got.end(), s) != got.end();
  }
};

Options hc_options(const std::string& name, bool encrypt, bool compress) {
  auto o = fast_options(name);
  o.wire_format = wire::WireFormat::hashicorp;
  o.framing.compress = compress;
  if (encrypt) {
    o.framing.keyring = std::make_shared<wire::Keyring>();
    EXPECT_TRUE(o.framing.keyring->install(kKey).ok());
  }
  return o;
}

class HashicorpMode : public ::testing::TestWithParam<std::pair<bool, bool>> {
 protected:
  std::shared_ptr<Runtime> rt = std::make_shared<Runtime>(2);
  std::vector<std::shared_ptr<Node>> nodes;
  std::vector<std::unique_ptr<Recorder>> recs;
  std::vector<std::unique_ptr<Inbox>> inboxes;
  void TearDown() override { nodes.clear(); }

  void start(int n, bool encrypt, bool compress) {
    for (int i = 0; i < n; ++i) {
      recs.push_back(std::make_unique<Recorder>());
      inboxes.push_back(std::make_unique<Inbox>());
      auto cb = recs.back()->callbacks();
      cb.on_notification = [in = inboxes.back().get()](const core::Notification& x) { in->add(x); };
      auto node = make_node(rt, hc_options("hc-" + std::to_string(i), encrypt, compress), cb);
      ASSERT_TRUE(node);
      nodes.push_back(node);
    }
    for (int i = 1; i < n; ++i) {
      Status st;
      EXPECT_EQ(nodes[i]->join({addr_of(*nodes[0])}, st), 1) << st.message;
    }
    ASSERT_TRUE(eventually([&] {
      for (auto& node : nodes)
        if (node->num_members() != static_cast<size_t>(n)) return false;
      return true;
    })) << "cluster did not converge";
  }
};

TEST_P(HashicorpMode, MembershipMessagesLeaveAndFailure) {
  auto [encrypt, compress] = GetParam();
  start(3, encrypt, compress);
  // User messages, best-effort (a datagram) and reliable (a stream with its header).
  ASSERT_TRUE(nodes[1]->send_best_effort("hc-0", core::Bytes{'u', 'd', 'p'}).ok());
  ASSERT_TRUE(nodes[2]->send_reliable("hc-0", core::Bytes(100000, 'x')).ok());
  EXPECT_TRUE(eventually([&] { return inboxes[0]->has("udp") && inboxes[0]->has(std::string(100000, 'x')); }));
  // An application broadcast arrives as a plain user message. Only its origin transmits it
  // (retransmit_mult x log(n) times, to whoever it gossips or pings), so with the Local
  // preset's 2 transmissions one peer may get both: at least one of them has it.
  uint64_t id = 0;
  ASSERT_TRUE(nodes[0]->queue_broadcast("", core::Bytes{'b', 'c'}, id).ok());
  EXPECT_TRUE(eventually([&] { return inboxes[1]->has("bc") || inboxes[2]->has("bc"); }));
  // A graceful leave is seen as left; a node that stops is declared dead.
  ASSERT_TRUE(nodes[2]->leave(10s).ok());
  nodes[2]->shutdown();
  EXPECT_TRUE(eventually([&] { return recs[0]->saw(EventType::Leave, "hc-2", NodeState::Left); }));
  nodes[1]->shutdown();
  EXPECT_TRUE(eventually([&] { return recs[0]->saw(EventType::Leave, "hc-1", NodeState::Dead); }));
}

INSTANTIATE_TEST_SUITE_P(Layers, HashicorpMode,
                         ::testing::Values(std::pair{false, false}, std::pair{false, true}, std::pair{true, false},
                                           std::pair{true, true}),
                         [](const auto& info) {
                           return std::string(info.param.first ? "Encrypted" : "Plain") +
                                  (info.param.second ? "Compressed" : "Uncompressed");
                         });

// The bytes on the wire are hashicorp's: a ping encoded by HashicorpCodec gets an ack
// that HashicorpCodec decodes (a native node would refuse it as a bad frame).
TEST(HashicorpWire, RawPingIsAnsweredWithAHashicorpAck) {
  namespace asio = boost::asio;
  auto rt = std::make_shared<Runtime>(1);
  auto node = make_node(rt, hc_options("raw-target", false, false));
  ASSERT_TRUE(node);
  wire::hashicorp::HashicorpCodec codec;
  asio::io_context ioc;
  asio::ip::udp::socket sock(ioc, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  core::Ping ping;
  ping.seq = 4242;
  ping.node = "raw-target";
  core::Bytes out = codec.encode(ping);
  ASSERT_EQ(out[0], 0);  // pingMsg
  asio::ip::udp::endpoint to(asio::ip::make_address("127.0.0.1"), node->advertise_address().port);
  sock.non_blocking(true);
  bool acked = eventually([&] {
    boost::system::error_code ec;
    sock.send_to(asio::buffer(out), to, 0, ec);
    std::this_thread::sleep_for(50ms);
    std::array<uint8_t, 2048> buf{};
    asio::ip::udp::endpoint from;
    size_t n = sock.receive_from(asio::buffer(buf), from, 0, ec);
    if (ec || n == 0) return false;
    std::vector<core::Message> msgs;
    if (!codec.decode(std::span<const uint8_t>(buf.data(), n), msgs).ok() || msgs.size() != 1) return false;
    const auto* ack = std::get_if<core::Ack>(&msgs[0]);
    return ack != nullptr && ack->seq == 4242;
  });
  EXPECT_TRUE(acked);
  node.reset();
}

// The formats do not mix: a native node's join of a hashicorp node fails, and neither
// lists the other.
TEST(HashicorpWire, NativeNodeCannotJoinAHashicorpNode) {
  auto rt = std::make_shared<Runtime>(2);
  auto hc = make_node(rt, hc_options("hc-seed", false, true));
  auto native = make_node(rt, fast_options("native"));
  ASSERT_TRUE(hc && native);
  Status st;
  EXPECT_EQ(native->join({addr_of(*hc)}, st), 0);
  EXPECT_FALSE(st.ok());
  auto hc2 = make_node(rt, hc_options("hc-joiner", false, true));
  ASSERT_TRUE(hc2);
  EXPECT_EQ(hc2->join({addr_of(*native)}, st), 0);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(hc->num_members(), 1u);
  EXPECT_EQ(native->num_members(), 1u);
  hc.reset();
  hc2.reset();
  native.reset();
}

// The label header (upstream's format): same label joins, another label or none does not.
TEST(HashicorpWire, LabelsSeparateClusters) {
  auto rt = std::make_shared<Runtime>(2);
  auto labelled = [](const std::string& name, const std::string& label, bool encrypt) {
    auto o = hc_options(name, encrypt, true);
    o.framing.label = label;
    return o;
  };
  for (bool encrypt : {false, true}) {
    SCOPED_TRACE(encrypt ? "encrypted" : "plain");
    auto a = make_node(rt, labelled("la", "blue", encrypt));
    auto b = make_node(rt, labelled("lb", "blue", encrypt));
    auto c = make_node(rt, labelled("lc", "green", encrypt));
    auto d = make_node(rt, labelled("ld", "", encrypt));
    ASSERT_TRUE(a && b && c && d);
    Status st;
    EXPECT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
    EXPECT_TRUE(eventually([&] { return a->num_members() == 2 && b->num_members() == 2; }));
    EXPECT_EQ(c->join({addr_of(*a)}, st), 0);
    EXPECT_EQ(d->join({addr_of(*a)}, st), 0);
    EXPECT_GE(a->runtime_stats().frame_error(wire::FrameError::label_mismatch), 2u);
    EXPECT_EQ(a->num_members(), 2u);
  }
}

// Hostile input to a hashicorp-mode node: random, truncated and oversized datagrams,
// msgpack bombs (deep nesting, huge claimed counts), an LZW bomb, and streams that claim
// huge lengths or are garbage. Each is refused and counted; the node keeps its cluster.
TEST(HashicorpWire, HostileInputIsRefusedAndCounted) {
  namespace asio = boost::asio;
  auto rt = std::make_shared<Runtime>(2);
  auto a = make_node(rt, hc_options("hc-a", false, true));
  auto b = make_node(rt, hc_options("hc-b", false, true));
  ASSERT_TRUE(a && b);
  Status st;
  ASSERT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return a->num_members() == 2 && b->num_members() == 2; }));
  const uint64_t bad_before = a->stats().bad_messages;

  auto ip = asio::ip::make_address("127.0.0.1");
  const auto port = a->advertise_address().port;
  std::mt19937 rng(7);
  auto random_bytes = [&](size_t n) {
    core::Bytes v(n);
    for (auto& x : v) x = static_cast<uint8_t>(rng());
    return v;
  };
  {
    asio::io_context ioc;
    asio::ip::udp::socket s(ioc, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
    asio::ip::udp::endpoint to(ip, port);
    auto send = [&](const core::Bytes& d) { s.send_to(asio::buffer(d), to); };
    for (int i = 0; i < 100; ++i) send(random_bytes(1 + rng() % 1400));
    send(random_bytes(65000));
    // A real alive, cut at every length.
    wire::hashicorp::HashicorpCodec codec;
    core::Bytes alive = codec.encode(core::Alive{5, "mallory", core::Address::v4(127, 0, 0, 1, 9), {}, {1, 5, 2, 0, 0, 0}});
    for (size_t n = 1; n < alive.size(); ++n) send(core::Bytes(alive.begin(), alive.begin() + static_cast<long>(n)));
    // msgpack bombs: 1000 nested arrays; a map claiming 4 Gi entries; an array of 65535.
    core::Bytes deep{4};
    deep.insert(deep.end(), 1000, 0x91);
    send(deep);
    send(core::Bytes{4, 0xdf, 0xff, 0xff, 0xff, 0xff});
    send(core::Bytes{4, 0xdc, 0xff, 0xff});
    // An LZW bomb: 8 MiB of zeros compressed into a datagram (inflates past 64 KiB).
    core::Bytes zeros(8u << 20, 0);
    zeros[0] = 4;
    core::Bytes bomb = wire::hashicorp::compress_payload(zeros);
    ASSERT_LT(bomb.size(), 60000u);
    send(bomb);
    // A compound claiming 255 parts of 64 KiB with none present; a bad CRC.
    send(core::Bytes{7, 255, 0xff, 0xff});
    core::Bytes crc = wire::hashicorp::add_crc(alive);
    crc[2] ^= 1;
    send(crc);
  }
  auto tcp_send = [&](const core::Bytes& d) {
    asio::io_context ioc;
    asio::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect(asio::ip::tcp::endpoint(ip, port), ec);
    ASSERT_FALSE(ec) << ec.message();
    asio::write(s, asio::buffer(d), ec);
    s.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    std::array<uint8_t, 4096> sink{};
    while (!ec) s.read_some(asio::buffer(sink), ec);  // the node closes (bounded by tcp_timeout)
  };
  // userMsg whose header claims 4 GiB; an encrypted stream claiming 4 GiB (no keys here);
  // a push/pull claiming 2^31 nodes; garbage; a stream cut short.
  tcp_send(core::Bytes{8, 0x81, 0xaa, 'U', 's', 'e', 'r', 'M', 's', 'g', 'L', 'e', 'n', 0xce, 0xff, 0xff, 0xff, 0xff});
  tcp_send(core::Bytes{10, 0xff, 0xff, 0xff, 0xff});
  tcp_send(core::Bytes{6, 0x83, 0xa4, 'J', 'o', 'i', 'n', 0xc2, 0xa5, 'N', 'o', 'd', 'e', 's', 0xce, 0x80, 0, 0, 0,
                       0xac, 'U', 's', 'e', 'r', 'S', 't', 'a', 't', 'e', 'L', 'e', 'n', 0});
  tcp_send(random_bytes(3000));
  tcp_send(core::Bytes{6, 0x83, 0xa4, 'J', 'o'});

  // Counted: refused frames (runtime) and malformed messages (core).
  EXPECT_TRUE(eventually([&] {
    uint64_t frames = 0;
    for (auto n : a->runtime_stats().frame_errors) frames += n;
    return frames >= 3 && a->stats().bad_messages >= bad_before + 100;
  })) << "frame errors and bad messages were not counted";
  // Still a cluster, and it still works.
  EXPECT_EQ(a->num_members(), 2u);
  EXPECT_TRUE(a->send_reliable("hc-b", core::Bytes{'o', 'k'}).ok());
  auto c = make_node(rt, hc_options("hc-c", false, true));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->join({addr_of(*a)}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return a->num_members() == 3 && c->num_members() == 3; }));
  c.reset();
  a.reset();
  b.reset();
}

// Hashicorp streams carry no outer length: the node learns a message's size from its
// header as it reads. The stream budgets still apply: 20 connections each announcing a
// 4 MiB user message and sending 3 MiB of it, then stalling, get no more than
// max_inbound_stream_bytes (16 MiB: 4 of them) admitted; the rest are refused and counted,
// and small streams (a join) still go through.
TEST(HashicorpWire, StalledLargeStreamsAreBoundedInBytes) {
  namespace asio = boost::asio;
  auto rt = std::make_shared<Runtime>(2);
  auto o = hc_options("hc-target", false, false);
  o.framing.max_stream_message = 8u << 20;
  o.max_inbound_stream_bytes = 16u << 20;
  o.core.tcp_timeout = std::chrono::seconds(60);  // the stalled ones stay while we count
  auto target = make_node(rt, o);
  ASSERT_TRUE(target);
  const uint32_t len = (4u << 20) - 64;
  // userMsg (8), its header {"UserMsgLen": len}, then 3 MiB of the announced body.
  core::Bytes head{8, 0x81, 0xaa, 'U', 's', 'e', 'r', 'M', 's', 'g', 'L', 'e', 'n', 0xce,
                   static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
                   static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
  head.resize(head.size() + (3u << 20), 'x');
  asio::io_context ioc;
  asio::ip::tcp::endpoint to(asio::ip::make_address("127.0.0.1"), target->advertise_address().port);
  std::vector<asio::ip::tcp::socket> stalled;
  for (int i = 0; i < 20; ++i) {
    boost::system::error_code ec;
    stalled.emplace_back(ioc);
    stalled.back().connect(to, ec);
    ASSERT_FALSE(ec) << ec.message();
    asio::write(stalled.back(), asio::buffer(head), ec);  // refused ones fail part way: fine
  }
  EXPECT_TRUE(eventually([&] { return target->runtime_stats().refused_streams >= 16; }))
      << target->runtime_stats().refused_streams;
  EXPECT_LE(target->runtime_stats().refused_streams, 19u);  // some were admitted
  auto c = make_node(rt, hc_options("hc-c", false, false));
  ASSERT_TRUE(c);
  Status st;
  EXPECT_EQ(c->join({addr_of(*target)}, st), 1) << st.message;
  stalled.clear();
  c.reset();
  target.reset();
}

}  // namespace
}  // namespace memberlist::runtime::test
