// Helpers shared by the wire tests and the fuzz targets (so no GoogleTest here): message
// builders and field-by-field comparison (core messages have no operator==).
#pragma once

#include <string>
#include <vector>

#include "core/messages.h"
#include "wire/wire.h"

namespace memberlist::wire::test {

using namespace memberlist::core;

inline Address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  Address r;
  r.ip[10] = r.ip[11] = 0xff;
  r.ip[12] = a;
  r.ip[13] = b;
  r.ip[14] = c;
  r.ip[15] = d;
  r.port = port;
  return r;
}

inline Address v6_all_bits(uint16_t port) {
  Address r;
  for (size_t i = 0; i < r.ip.size(); ++i) r.ip[i] = static_cast<uint8_t>(0xf0 + i);
  r.port = port;
  return r;
}

inline Bytes bytes_of(size_t n, uint8_t seed = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 31);
  return b;
}

inline bool same(const Ping& a, const Ping& b) {
  return a.seq == b.seq && a.node == b.node && a.source == b.source && a.source_node == b.source_node;
}
inline bool same(const IndirectPing& a, const IndirectPing& b) {
  return a.seq == b.seq && a.target == b.target && a.node == b.node && a.nack == b.nack &&
         a.source == b.source && a.source_node == b.source_node;
}
inline bool same(const Ack& a, const Ack& b) { return a.seq == b.seq && a.payload == b.payload; }
inline bool same(const Nack& a, const Nack& b) { return a.seq == b.seq; }
inline bool same(const Suspect& a, const Suspect& b) {
  return a.incarnation == b.incarnation && a.node == b.node && a.from == b.from;
}
inline bool same(const Alive& a, const Alive& b) {
  return a.incarnation == b.incarnation && a.node == b.node && a.addr == b.addr && a.meta == b.meta &&
         a.vsn == b.vsn;
}
inline bool same(const Dead& a, const Dead& b) {
  return a.incarnation == b.incarnation && a.node == b.node && a.from == b.from;
}
inline bool same(const PushNodeState& a, const PushNodeState& b) {
  return a.name == b.name && a.addr == b.addr && a.meta == b.meta && a.incarnation == b.incarnation &&
         a.state == b.state && a.vsn == b.vsn;
}
inline bool same(const UserBroadcast& a, const UserBroadcast& b) {
  return a.origin == b.origin && a.epoch == b.epoch && a.seq == b.seq && a.name == b.name && a.payload == b.payload &&
         a.repaired == b.repaired && a.age_ms == b.age_ms;
}
inline bool same(const PushPull& a, const PushPull& b) {
  if (a.join != b.join || a.user_state != b.user_state || a.nodes.size() != b.nodes.size()) return false;
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    if (!same(a.nodes[i], b.nodes[i])) return false;
  }
  if (a.repair_window_ms != b.repair_window_ms || a.broadcast_digest.size() != b.broadcast_digest.size() ||
      a.broadcast_repair.size() != b.broadcast_repair.size())
    return false;
  for (size_t i = 0; i < a.broadcast_digest.size(); ++i) {
    const auto &x = a.broadcast_digest[i], &y = b.broadcast_digest[i];
    if (x.origin != y.origin || x.epoch != y.epoch || x.seq != y.seq) return false;
  }
  for (size_t i = 0; i < a.broadcast_repair.size(); ++i) {
    if (!same(a.broadcast_repair[i], b.broadcast_repair[i])) return false;
  }
  return true;
}
inline bool same(const UserMsg& a, const UserMsg& b) { return a.payload == b.payload; }
inline bool same(const ErrResp& a, const ErrResp& b) { return a.error == b.error; }

inline bool same(const Message& a, const Message& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return same(x, std::get<T>(b));
      },
      a);
}

// One of every message type, with ordinary values.
inline std::vector<Message> sample_messages() {
  PushPull pp;
  pp.join = true;
  pp.nodes.push_back({"n1", v4(10, 0, 0, 1, 7946), bytes_of(3), 7, NodeState::Suspect, {1, 5, 2, 0, 1, 0}});
  pp.nodes.push_back({"n2", v6_all_bits(1), {}, 1, NodeState::Left, {}});
  pp.user_state = bytes_of(40);
  return {
      Ping{1, "n2", v4(10, 0, 0, 1, 7946), "n1"},
      IndirectPing{300, v4(10, 0, 0, 3, 7946), "n3", true, v4(10, 0, 0, 1, 7946), "n1"},
      Ack{9, bytes_of(5)},
      Nack{70000},
      Suspect{2, "n2", "n1"},
      Alive{1, "n1", v4(10, 0, 0, 1, 7946), bytes_of(7), {1, 5, 2, 0, 0, 0}},
      Dead{3, "n1", "n1"},
      pp,
      UserMsg{bytes_of(12)},
      ErrResp{"remote state is larger than limit"},
      UserBroadcast{"n1", 0xdeadbeef, 42, "config", bytes_of(30)},
  };
}

}  // namespace memberlist::wire::test
