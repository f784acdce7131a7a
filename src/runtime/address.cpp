// Join-address parsing, endpoint conversions, the advertise-address choice, DNS.
#include "runtime/address.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstring>
#include <optional>

#include "runtime/node.h"

namespace memberlist::runtime {

using core::Errc;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_port(std::string_view s, uint16_t& port) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v == 0 || v > 65535) {
    return false;
  }
  port = static_cast<uint16_t>(v);
  return true;
}

Status bad(const std::string& entry, const char* why) {
  return Status::error(Errc::invalid, "bad join address '" + entry + "': " + why);
}

}  // namespace

Status parse_join_address(const std::string& entry, uint16_t default_port, std::string& name,
                          std::string& host, uint16_t& port) {
  std::string_view s = trim(entry);
  if (s.empty()) return bad(entry, "empty");
  std::string_view node_name;
  if (auto slash = s.find('/'); slash != std::string_view::npos) {
    if (slash == 0) return bad(entry, "empty node name");
    node_name = s.substr(0, slash);
    s = s.substr(slash + 1);
  }
  std::string_view h;
  uint16_t p = default_port;
  if (!s.empty() && s.front() == '[') {
    // "[v6]" or "[v6]:port"
    auto close = s.find(']');
    if (close == std::string_view::npos) return bad(entry, "missing ']'");
    h = s.substr(1, close - 1);
    auto rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !parse_port(rest.substr(1), p)) return bad(entry, "bad port");
    }
    boost::system::error_code ec;
    detail::ip::make_address_v6(std::string(h), ec);
    if (ec) return bad(entry, "not an IPv6 address in brackets");
  } else if (std::count(s.begin(), s.end(), ':') > 1) {
    // A bare IPv6 literal: no port can be given without brackets.
    h = s;
    boost::system::error_code ec;
    detail::ip::make_address_v6(std::string(h), ec);
    if (ec) return bad(entry, "bad IPv6 address (use [addr]:port)");
  } else if (auto colon = s.find(':'); colon != std::string_view::npos) {
    h = s.substr(0, colon);
    if (!parse_port(s.substr(colon + 1), p)) return bad(entry, "bad port");
  } else {
    h = s;
  }
  if (h.empty()) return bad(entry, "empty host");
  if (h.find_first_of(" \t[]/") != std::string_view::npos) return bad(entry, "bad host");
  if (p == 0) return bad(entry, "no port and no default port");
  name = std::string(node_name);
  host = std::string(h);
  port = p;
  return Status::success();
}

namespace detail {

core::Address to_core(const ip::address& a, uint16_t port) {
  core::Address out;
  out.port = port;
  if (a.is_v4()) {
    auto b = ip::make_address_v6(ip::v4_mapped, a.to_v4()).to_bytes();
    std::copy(b.begin(), b.end(), out.ip.begin());
  } else {
    auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), out.ip.begin());
  }
  return out;
}

ip::address to_ip(const core::Address& a) {
  ip::address_v6::bytes_type b;
  std::copy(a.ip.begin(), a.ip.end(), b.begin());
  ip::address_v6 v6(b);
  if (v6.is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, v6);
  return v6;
}

namespace {
template <class Endpoint>
bool to_endpoint_impl(const core::Address& a, bool v6_socket, Endpoint& out) {
  ip::address addr = to_ip(a);
  if (v6_socket) {
    // A dual-stack socket reaches IPv4 peers through v4-mapped addresses.
    if (addr.is_v4()) addr = ip::make_address_v6(ip::v4_mapped, addr.to_v4());
  } else if (addr.is_v6()) {
    return false;
  }
  out = Endpoint(addr, a.port);
  return true;
}
}  // namespace

bool to_endpoint(const core::Address& a, bool v6_socket, ip::udp::endpoint& out) {
  return to_endpoint_impl(a, v6_socket, out);
}
bool to_endpoint(const core::Address& a, bool v6_socket, ip::tcp::endpoint& out) {
  return to_endpoint_impl(a, v6_socket, out);
}

namespace {
bool private_v4(const ip::address_v4& a) {
  auto b = a.to_bytes();
  return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
         (b[0] == 100 && (b[1] & 0xc0) == 64);
}
}  // namespace

std::vector<InterfaceAddress> interface_addresses() {
  std::vector<InterfaceAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || !(i->ifa_flags & IFF_UP)) continue;
    const bool loopback = (i->ifa_flags & IFF_LOOPBACK) != 0;
    if (i->ifa_addr->sa_family == AF_INET) {
      ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
      out.push_back({ip::address_v4(b), loopback});
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      out.push_back({ip::address_v6(b), loopback});
    }
  }
  freeifaddrs(list);
  return out;
}

AdvertiseChoice choose_advertise_ip(const std::vector<InterfaceAddress>& interfaces, bool v6_bind) {
  auto first = [&](auto&& wanted) -> std::optional<ip::address> {
    for (const auto& i : interfaces) {
      if (!i.loopback && !i.addr.is_unspecified() && wanted(i.addr)) return i.addr;
    }
    return std::nullopt;
  };
  if (auto a = first([](const ip::address& a) { return a.is_v4() && private_v4(a.to_v4()); })) return {*a, ""};
  auto unique_local = [](const ip::address& a) { return a.is_v6() && (a.to_v6().to_bytes()[0] & 0xfe) == 0xfc; };
  if (v6_bind) {
    if (auto a = first(unique_local)) return {*a, ""};
  }
  auto routable = [&](const ip::address& a) {
    if (a.is_v4()) return !a.is_loopback() && (a.to_v4().to_bytes()[0] != 169 || a.to_v4().to_bytes()[1] != 254);
    return v6_bind && !a.is_loopback() && !a.to_v6().is_link_local() && !a.to_v6().is_v4_mapped();
  };
  if (auto a = first(routable)) {
    return {*a, "No private IP address found: advertising " + a->to_string() +
                    ", which may be a public address (use encryption, or set advertise_addr to choose)"};
  }
  return {ip::address_v4::loopback(),
          "No usable IP address found: advertising 127.0.0.1, which only nodes on this host can reach "
          "(set advertise_addr to choose)"};
}

core::Status resolve_host(const std::string& host, std::vector<ip::address>& out) {
  boost::system::error_code ec;
  auto literal = ip::make_address(host, ec);
  if (!ec) {
    out.push_back(literal);
    return Status::success();
  }
  boost::asio::io_context ioc;
  ip::tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, "", ec);
  if (ec) return Status::error(Errc::io, "cannot resolve '" + host + "': " + ec.message());
  for (const auto& r : results) {
    auto a = r.endpoint().address();
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  if (out.empty()) return Status::error(Errc::io, "no address for '" + host + "'");
  return Status::success();
}

Status AllowList::parse(const std::vector<std::string>& cidrs, AllowList& out) {
  out = AllowList{};
  for (const auto& entry : cidrs) {
    std::string e(trim(entry));
    auto bad_cidr = [&] { return Status::error(Errc::invalid, "invalid allowed CIDR '" + entry + "'"); };
    auto slash = e.find('/');
    boost::system::error_code ec;
    auto addr = ip::make_address(e.substr(0, slash), ec);
    if (ec) return bad_cidr();
    unsigned bits = addr.is_v4() ? 32 : 128;
    if (slash != std::string::npos) {
      std::string_view b(e.data() + slash + 1, e.size() - slash - 1);
      auto [end, err] = std::from_chars(b.data(), b.data() + b.size(), bits);
      if (b.empty() || err != std::errc{} || end != b.data() + b.size() || bits > (addr.is_v4() ? 32u : 128u)) {
        return bad_cidr();
      }
    }
    // Host bits set ("10.1.2.3/8") are accepted, as the reference's net.ParseCIDR does.
    if (addr.is_v4()) {
      out.v4_.push_back(ip::network_v4(addr.to_v4(), static_cast<unsigned short>(bits)).canonical());
    } else {
      out.v6_.push_back(ip::network_v6(addr.to_v6(), static_cast<unsigned short>(bits)).canonical());
    }
  }
  return Status::success();
}

bool AllowList::allows(const ip::address& addr) const {
  if (empty()) return true;
  ip::address a = addr;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = ip::make_address_v4(ip::v4_mapped, a.to_v6());
  if (a.is_v4()) {
    ip::network_v4 host(a.to_v4(), 32);
    return std::any_of(v4_.begin(), v4_.end(), [&](const auto& n) { return host == n || host.is_subnet_of(n); });
  }
  ip::network_v6 host(a.to_v6(), 128);
  return std::any_of(v6_.begin(), v6_.end(), [&](const auto& n) { return host == n || host.is_subnet_of(n); });
}

bool AllowList::allows(const core::Address& a) const { return empty() || allows(to_ip(a)); }

}  // namespace detail
}  // namespace memberlist::runtime
