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

// The address to advertise when none was configured and the bind address is unspecified
// ("0.0.0.0" or "::"): the first private (RFC 1918 / RFC 6598) IPv4 address of an interface
// that is up and not loopback, then the first unique-local IPv6 (fc00::/7) if binding "::",
// else 127.0.0.1.
ip::address pick_advertise_ip(bool v6_bind);

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
