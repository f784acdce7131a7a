// Nodes in hashicorp mode (Options::wire_format) among themselves, on loopback: membership,
// user messages on both paths, encryption and compression, leave and failure; a raw
// hashicorp ping answered on the wire; a native node cannot join a hashicorp one. The
// interop tests against Go memberlist are in tests/interop.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "helpers.h"
#include "wire/hashicorp/codec.h"
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

}  // namespace
}  // namespace memberlist::runtime::test
