// Value types shared by every layer: time, addresses, node state, results.
// The core never reads a clock: every Instant comes in from the driver (runtime or simulator).
#pragma once

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <string>
#include <vector>

namespace memberlist::core {

using Duration = std::chrono::microseconds;
// Time since an arbitrary epoch chosen by the driver; must never go backwards.
using Instant = std::chrono::microseconds;
using Bytes = std::vector<uint8_t>;

// An IP address and port. IPv4 is stored v4-mapped (::ffff:a.b.c.d) so that one
// node always has one form (the reference compares addresses byte-wise).
struct Address {
  std::array<uint8_t, 16> ip{};
  uint16_t port = 0;
  // An IPv4 address that arrived in a hashicorp/memberlist message as 16 bytes (Go's
  // net.IP long form): the hashicorp codec writes it back in that form, since Go compares
  // address bytes and would see the 4-byte form as another address. Not part of the
  // address's identity: ignored by comparisons.
  bool wire16 = false;

  static Address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port);
  bool is_v4() const;
  bool empty() const { return *this == Address{}; }
  std::string to_string() const;       // "1.2.3.4:7946" or "[::1]:7946"
  std::string host_string() const;     // "1.2.3.4" or "::1"
  friend bool operator==(const Address& a, const Address& b) { return a.ip == b.ip && a.port == b.port; }
  friend std::strong_ordering operator<=>(const Address& a, const Address& b) {
    if (auto c = a.ip <=> b.ip; c != 0) return c;
    return a.port <=> b.port;
  }
};

enum class NodeState : uint8_t { Alive = 0, Suspect = 1, Dead = 2, Left = 3 };
const char* to_string(NodeState s);

// Protocol version vector, in the reference's order.
struct Vsn {
  uint8_t pmin = 0, pmax = 0, pcur = 0, dmin = 0, dmax = 0, dcur = 0;
  friend bool operator==(const Vsn&, const Vsn&) = default;
};

inline constexpr uint8_t kProtocolVersionMin = 1;
inline constexpr uint8_t kProtocolVersionMax = 5;

// A copy of what we know about one node, as handed out to callers.
struct NodeInfo {
  std::string name;
  Address addr;
  Bytes meta;
  NodeState state = NodeState::Alive;
  uint32_t incarnation = 0;
  Vsn vsn;
};

enum class Errc : uint8_t {
  ok = 0,
  invalid,      // bad argument or config
  protocol,     // malformed or unexpected message from a peer
  timeout,
  not_found,
  state,        // wrong state for this call (left, shut down, ...)
  rejected,     // refused by a rule or a hook (version, veto, allow-list)
  io,           // transport failure
  too_large,    // a size bound was hit
};

struct Status {
  Errc code = Errc::ok;
  std::string message;

  bool ok() const { return code == Errc::ok; }
  static Status success() { return {}; }
  static Status error(Errc c, std::string msg) { return {c, std::move(msg)}; }
};

enum class LogLevel : uint8_t { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4 };

// Whether the n-th (from 1) of a repeated kind of line keeps its level: the 1st, 2nd, 4th,
// 8th...; the others go to debug, so that a flood of bad input cannot flood the log.
constexpr bool keeps_level(uint64_t n) { return (n & (n - 1)) == 0; }

}  // namespace memberlist::core
