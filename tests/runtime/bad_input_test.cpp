// Garbage sent to a node's UDP and TCP ports leaves it running with its membership intact.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <random>

#include "helpers.h"
#include "wire/wire.h"

namespace memberlist::runtime::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

std::vector<uint8_t> random_bytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::vector<uint8_t> header(uint32_t len) {
  return {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
          static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
}

// Connects, writes `data`, optionally half-closes, and waits (bounded) for the node to
// close the connection.
void tcp_send(const tcp::endpoint& to, const std::vector<uint8_t>& data, bool half_close) {
  asio::io_context ioc;
  tcp::socket s(ioc);
  boost::system::error_code ec;
  s.connect(to, ec);
  ASSERT_FALSE(ec) << ec.message();
  asio::write(s, asio::buffer(data), ec);
  if (half_close) s.shutdown(tcp::socket::shutdown_send, ec);
  // The node reads what it was promised, gives up or answers, and closes: reading to EOF
  // (or a reset) must end, bounded by the node's tcp_timeout.
  std::vector<uint8_t> sink(4096);
  for (;;) {
    s.read_some(asio::buffer(sink), ec);
    if (ec) break;
  }
}

TEST(BadInput, GarbageOnUdpAndTcpIsSurvived) {
  auto rt = std::make_shared<Runtime>(2);
  auto a = make_node(rt, fast_options("a"));
  auto b = make_node(rt, fast_options("b"));
  ASSERT_TRUE(a && b);
  Status st;
  ASSERT_EQ(b->join({addr_of(*a)}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return a->num_members() == 2 && b->num_members() == 2; }));

  auto port = a->advertise_address().port;
  auto ip = asio::ip::make_address("127.0.0.1");
  std::mt19937 rng(42);

  // ---- UDP: random, truncated, empty, oversized ----
  {
    asio::io_context ioc;
    udp::socket s(ioc, udp::endpoint(udp::v4(), 0));
    udp::endpoint to(ip, port);
    for (int i = 0; i < 200; ++i) s.send_to(asio::buffer(random_bytes(rng, 1 + rng() % 1400)), to);
    s.send_to(asio::buffer(std::vector<uint8_t>{}), to);
    for (size_t n = 1; n < 16; ++n) s.send_to(asio::buffer(random_bytes(rng, n)), to);
    // A real message, truncated: take a sealed packet of garbage payload and cut it.
    auto sealed = wire::seal_packet({}, random_bytes(rng, 100));
    for (size_t n = 0; n < sealed.size(); n += 7) {
      s.send_to(asio::buffer(sealed.data(), n), to);
    }
    s.send_to(asio::buffer(random_bytes(rng, 65000)), to);  // near the datagram limit
  }

  // ---- TCP ----
  tcp::endpoint to(ip, port);
  tcp_send(to, header(0xFFFFFFFFu), false);                      // announces 4 GiB
  tcp_send(to, header(20u << 20 | 1), false);                    // just over the limit
  {
    auto half = header(100);                                     // promises 100, sends 10
    auto body = random_bytes(rng, 10);
    half.insert(half.end(), body.begin(), body.end());
    tcp_send(to, half, true);
    // Same, but the sender stays silent with the connection open: the node's tcp_timeout
    // closes it (tcp_send returns only once the node closed the connection).
    tcp_send(to, half, false);
  }
  {
    auto msg = header(64);                                       // valid header + garbage
    auto body = random_bytes(rng, 64);
    msg.insert(msg.end(), body.begin(), body.end());
    tcp_send(to, msg, true);
  }
  tcp_send(to, random_bytes(rng, 3000), true);                   // plain random bytes
  tcp_send(to, header(0), true);                                 // empty message
  tcp_send(to, {0x00, 0x00}, true);                              // truncated header
  {
    // A sealed stream message whose payload is not a protocol message.
    tcp_send(to, wire::seal_stream_message({}, random_bytes(rng, 200)), true);
  }

  // Still answering and still a member of the same cluster.
  Duration rtt{};
  EXPECT_TRUE(eventually([&] { return a->ping("b", rtt).ok(); }));
  EXPECT_TRUE(eventually([&] { return b->ping("a", rtt).ok(); }));
  EXPECT_EQ(a->num_members(), 2u);
  EXPECT_EQ(b->num_members(), 2u);
  EXPECT_TRUE(has_member(*a, "b"));
  EXPECT_GT(a->stats().bad_messages, 0u);
  auto rs = a->runtime_stats();
  EXPECT_GT(rs.frame_error(wire::FrameError::malformed), 0u);
  EXPECT_GT(rs.frame_error(wire::FrameError::too_large), 0u);  // the 4 GiB header
  // And it can still take a new member.
  auto c = make_node(rt, fast_options("c"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->join({addr_of(*a)}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return a->num_members() == 3 && b->num_members() == 3; }));
}

TEST(BadInput, TooManyIdleConnectionsAreRefusedNotFatal) {
  auto rt = std::make_shared<Runtime>(2);
  auto o = fast_options("a");
  o.core.tcp_timeout = std::chrono::seconds(20);  // the idle ones stay until we close them
  o.max_inbound_connections = 128;
  o.max_inbound_connections_per_source = 1000;  // all from 127.0.0.1: the global bound is tested here
  auto a = make_node(rt, o);
  auto b = make_node(rt, fast_options("b"));
  ASSERT_TRUE(a && b);
  // 150 connections that never send anything: more than the 128 allowed at once.
  asio::io_context ioc;
  std::vector<tcp::socket> idle;
  tcp::endpoint to(asio::ip::make_address("127.0.0.1"), a->advertise_address().port);
  for (int i = 0; i < 150; ++i) {
    idle.emplace_back(ioc);
    boost::system::error_code ec;
    idle.back().connect(to, ec);
    ASSERT_FALSE(ec) << ec.message();
    idle.back().non_blocking(true);
  }
  // The node closes the extra ones at once: a read sees EOF (or a reset) on about 22.
  auto closed_by_node = [&] {
    int n = 0;
    for (auto& s : idle) {
      uint8_t byte;
      boost::system::error_code ec;
      s.read_some(asio::buffer(&byte, 1), ec);
      if (ec && ec != asio::error::would_block) ++n;
    }
    return n;
  };
  EXPECT_TRUE(eventually([&] { return closed_by_node() >= 150 - 128; })) << closed_by_node();
  EXPECT_LT(closed_by_node(), 150);
  EXPECT_GE(a->runtime_stats().refused_streams, 150u - 128u);
  // Membership and UDP are unaffected meanwhile.
  Duration rtt{};
  EXPECT_TRUE(a->ping("a", rtt).ok());
  // Once the idle ones go away, streams are served again.
  idle.clear();
  Status st;
  EXPECT_TRUE(eventually([&] { return b->join({addr_of(*a)}, st) == 1; })) << st.message;
  EXPECT_TRUE(eventually([&] { return a->num_members() == 2; }));
}

}  // namespace
}  // namespace memberlist::runtime::test
