// Internal helpers of the runtime: conversions between core::Address and asio endpoints,
// the advertise-address choice and DNS resolution for join().
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <string>
#include <vector>

#include "core/types.h"

namespace memberlist::runtime::detail {

namespace ip = boost::asio::ip;

// IPv4 becomes v4-mapped (the core's one form per node).
core::Address to_core(const ip::address& a, uint16_t port);
// The plain form: v4-mapped addresses come back as IPv4.
ip::address to_ip(const core::Address& a);
// The endpoint a socket of family `v6_socket` can send to; false if it cannot reach it
// (an IPv6 destination from an IPv4 socket).
bool to_endpoint(const core::Address& a, bool v6_socket, ip::udp::endpoint& out);
bool to_endpoint(const core::Address& a, bool v6_socket, ip::tcp::endpoint& out);

// One address of a network interface that is up (getifaddrs).
struct InterfaceAddress {
  ip::address addr;
  bool loopback = false;
};
std::vector<InterfaceAddress> interface_addresses();

// The address to advertise when none was configured and the bind address is unspecified
// ("0.0.0.0" or "::"), and a warning to log when the choice is not a clean one. In order:
// the first private (RFC 1918 / RFC 6598) IPv4 address of an interface that is not loopback,
// then, if binding "::", the first unique-local IPv6 (fc00::/7); then, with a warning, the
// first other routable address (IPv4, or IPv6 if binding "::"; link-local ones are never
// chosen); then, with a warning, 127.0.0.1, which only nodes on this host can reach. The
// reference refuses to start in the last two cases ("No private IP address found"); we start,
// and say what we advertise and how to choose (advertise_addr).
struct AdvertiseChoice {
  ip::address addr;
  std::string warning;  // empty for a private address
};
AdvertiseChoice choose_advertise_ip(const std::vector<InterfaceAddress>& interfaces, bool v6_bind);

// Resolves `host` (an IP literal or a DNS name) to every address it has, IP literals
// without any lookup. Errors carry Errc::io with the resolver's message.
core::Status resolve_host(const std::string& host, std::vector<ip::address>& out);

// The IP allow-list (Options::allowed_cidrs). Empty allows everyone.
class AllowList {
 public:
  // Parses "10.0.0.0/8", "fd00::/8" (spaces around are ignored; a bare address is one
  // host). Errc::invalid naming the first bad entry.
  static core::Status parse(const std::vector<std::string>& cidrs, AllowList& out);
  bool empty() const { return v4_.empty() && v6_.empty(); }
  // v4-mapped IPv6 addresses are matched as IPv4.
  bool allows(const ip::address& a) const;
  bool allows(const core::Address& a) const;

 private:
  std::vector<ip::network_v4> v4_;
  std::vector<ip::network_v6> v6_;
};

}  // namespace memberlist::runtime::detail
