// parse_join_address and the endpoint conversions.
#include <gtest/gtest.h>

#include "runtime/address.h"
#include "runtime/node.h"

namespace memberlist::runtime {
namespace {

struct Case {
  const char* entry;
  bool ok;
  const char* name;
  const char* host;
  uint16_t port;
};

TEST(JoinAddress, Table) {
  const Case cases[] = {
      {"127.0.0.1", true, "", "127.0.0.1", 7946},
      {"127.0.0.1:8000", true, "", "127.0.0.1", 8000},
      {"node-a/127.0.0.1:8000", true, "node-a", "127.0.0.1", 8000},
      {"node-a/10.0.0.1", true, "node-a", "10.0.0.1", 7946},
      {"example.com", true, "", "example.com", 7946},
      {"example.com:1", true, "", "example.com", 1},
      {"  localhost:65535 ", true, "", "localhost", 65535},
      {"[::1]:7000", true, "", "::1", 7000},
      {"[::1]", true, "", "::1", 7946},
      {"::1", true, "", "::1", 7946},
      {"fe80::1%lo", true, "", "fe80::1%lo", 7946},
      {"n/[2001:db8::1]:9", true, "n", "2001:db8::1", 9},
      {"", false, "", "", 0},
      {"   ", false, "", "", 0},
      {"/127.0.0.1", false, "", "", 0},
      {"n/", false, "", "", 0},
      {"127.0.0.1:", false, "", "", 0},
      {"127.0.0.1:0", false, "", "", 0},
      {"127.0.0.1:65536", false, "", "", 0},
      {"127.0.0.1:80x", false, "", "", 0},
      {"127.0.0.1:-1", false, "", "", 0},
      {":7946", false, "", "", 0},
      {"[::1", false, "", "", 0},
      {"[::1]x", false, "", "", 0},
      {"[::1]:", false, "", "", 0},
      {"[127.0.0.1]:80", false, "", "", 0},
      {"[nothex]:80", false, "", "", 0},
      {"a::b::c", false, "", "", 0},
      {"host name:80", false, "", "", 0},
      {"a/b/c", false, "", "", 0},
  };
  for (const auto& c : cases) {
    std::string name = "unchanged", host = "unchanged";
    uint16_t port = 1234;
    auto st = parse_join_address(c.entry, 7946, name, host, port);
    EXPECT_EQ(st.ok(), c.ok) << "'" << c.entry << "': " << st.message;
    if (!c.ok) {
      EXPECT_EQ(st.code, core::Errc::invalid) << c.entry;
      EXPECT_FALSE(st.message.empty());
      continue;
    }
    if (!st.ok()) continue;
    EXPECT_EQ(name, c.name) << c.entry;
    EXPECT_EQ(host, c.host) << c.entry;
    EXPECT_EQ(port, c.port) << c.entry;
  }
}

TEST(JoinAddress, NoDefaultPortNeedsExplicitPort) {
  std::string name, host;
  uint16_t port = 0;
  EXPECT_FALSE(parse_join_address("10.0.0.1", 0, name, host, port).ok());
  EXPECT_TRUE(parse_join_address("10.0.0.1:5", 0, name, host, port).ok());
  EXPECT_EQ(port, 5);
}

TEST(Endpoints, V4IsStoredMappedAndComesBackPlain) {
  namespace ip = boost::asio::ip;
  auto a = detail::to_core(ip::make_address("192.0.2.7"), 99);
  EXPECT_EQ(a, core::Address::v4(192, 0, 2, 7, 99));
  EXPECT_EQ(detail::to_ip(a), ip::make_address("192.0.2.7"));
  // The mapped v6 form of the same address is the same core::Address.
  EXPECT_EQ(detail::to_core(ip::make_address("::ffff:192.0.2.7"), 99), a);

  ip::udp::endpoint ep;
  ASSERT_TRUE(detail::to_endpoint(a, false, ep));
  EXPECT_TRUE(ep.address().is_v4());
  ASSERT_TRUE(detail::to_endpoint(a, true, ep));  // dual-stack socket
  EXPECT_EQ(ep.address(), ip::make_address("::ffff:192.0.2.7"));

  auto v6 = detail::to_core(ip::make_address("2001:db8::5"), 1);
  EXPECT_FALSE(v6.is_v4());
  EXPECT_FALSE(detail::to_endpoint(v6, false, ep));  // IPv4 socket cannot reach it
  ASSERT_TRUE(detail::to_endpoint(v6, true, ep));
  EXPECT_EQ(ep.address(), ip::make_address("2001:db8::5"));
}

TEST(Resolve, LiteralAndLocalhostAndFailure) {
  std::vector<boost::asio::ip::address> out;
  ASSERT_TRUE(detail::resolve_host("127.0.0.1", out).ok());
  ASSERT_EQ(out.size(), 1u);
  out.clear();
  auto st = detail::resolve_host("localhost", out);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_FALSE(out.empty());
  for (const auto& a : out) EXPECT_TRUE(a.is_loopback()) << a.to_string();
  out.clear();
  st = detail::resolve_host("no-such-host.invalid", out);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code, core::Errc::io);
}

TEST(Advertise, PicksAnUsableAddress) {
  auto a = detail::choose_advertise_ip(detail::interface_addresses(), false).addr;
  EXPECT_FALSE(a.is_unspecified());
}

// The rule with bind "0.0.0.0" or "::" and no advertise_addr (address.h): private first,
// quietly; then a routable address, loudly; then loopback, loudly.
TEST(Advertise, PrivateFirstThenRoutableThenLoopbackWithAWarning) {
  auto ip = [](const char* s) { return boost::asio::ip::make_address(s); };
  using I = detail::InterfaceAddress;
  const I lo{ip("127.0.0.1"), true}, lo6{ip("::1"), true}, link{ip("169.254.3.4"), false},
      link6{ip("fe80::1"), false}, pub{ip("203.0.113.7"), false}, pub6{ip("2001:db8::7"), false},
      priv{ip("192.168.1.20"), false}, ula{ip("fd00::20"), false}, cgnat{ip("100.64.0.9"), false};

  auto c = detail::choose_advertise_ip({lo, pub, priv}, false);
  EXPECT_EQ(c.addr, ip("192.168.1.20"));
  EXPECT_TRUE(c.warning.empty()) << c.warning;
  EXPECT_EQ(detail::choose_advertise_ip({lo, cgnat}, false).addr, ip("100.64.0.9"));
  c = detail::choose_advertise_ip({lo6, pub6, ula, lo}, true);
  EXPECT_EQ(c.addr, ip("fd00::20"));
  EXPECT_TRUE(c.warning.empty()) << c.warning;

  // No private address: a public one, said loudly. Link-local ones are never chosen.
  c = detail::choose_advertise_ip({lo, link, pub}, false);
  EXPECT_EQ(c.addr, ip("203.0.113.7"));
  EXPECT_NE(c.warning.find("No private IP address found: advertising 203.0.113.7"), std::string::npos) << c.warning;
  c = detail::choose_advertise_ip({lo6, link6, pub6}, true);
  EXPECT_EQ(c.addr, ip("2001:db8::7"));
  EXPECT_FALSE(c.warning.empty());
  // An IPv6 address is not chosen for an IPv4 bind.
  EXPECT_EQ(detail::choose_advertise_ip({lo, pub6, ula}, false).addr, ip("127.0.0.1"));

  // Nothing but loopback and link-local: 127.0.0.1, and a warning that says what it means.
  c = detail::choose_advertise_ip({lo, lo6, link, link6}, true);
  EXPECT_EQ(c.addr, ip("127.0.0.1"));
  EXPECT_NE(c.warning.find("only nodes on this host can reach"), std::string::npos) << c.warning;
  EXPECT_EQ(detail::choose_advertise_ip({}, false).addr, ip("127.0.0.1"));
}

}  // namespace
}  // namespace memberlist::runtime
