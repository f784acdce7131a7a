// Protocol messages as plain C++ values. Codecs (src/wire) turn them into bytes and back;
// the core only ever sees these structs, so a second codec (msgpack) is a second
// implementation of core::Codec, not a fork of the core.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/types.h"

namespace memberlist::core {

struct Ping {
  uint32_t seq = 0;
  std::string node;            // target name; empty = whoever is there
  Address source;              // where to send the ack (empty: the packet's source)
  std::string source_node;
};

struct IndirectPing {
  uint32_t seq = 0;
  Address target;
  std::string node;            // target name
  bool nack = false;           // ask the helper to send a nack if the target stays silent
  Address source;
  std::string source_node;
};

struct Ack {
  uint32_t seq = 0;
  Bytes payload;
};

struct Nack {
  uint32_t seq = 0;
};

struct Suspect {
  uint32_t incarnation = 0;
  std::string node;
  std::string from;
};

struct Alive {
  uint32_t incarnation = 0;
  std::string node;
  Address addr;
  Bytes meta;
  Vsn vsn;
};

struct Dead {
  uint32_t incarnation = 0;
  std::string node;
  std::string from;            // == node: graceful leave
};

struct PushNodeState {
  std::string name;
  Address addr;
  Bytes meta;
  uint32_t incarnation = 0;
  NodeState state = NodeState::Alive;
  Vsn vsn;
};

// An application broadcast that spreads epidemically: every node that receives it for the
// first time delivers it once and retransmits it like membership news. (origin, epoch, seq)
// identifies it; a named one supersedes older ones of the same (origin, name).
struct UserBroadcast {
  std::string origin;          // node that queued it
  uint32_t epoch = 0;          // random per Core instance: a restarted origin starts afresh
  uint32_t seq = 0;            // per-origin counter within the epoch, from 1
  std::string name;            // empty = unique
  Bytes payload;
  // Sent by broadcast repair to a member that lacked it: delivered, never forwarded (gossip
  // has done its work; forwarding would spread it again, to members that joined since).
  bool repaired = false;
  // With `repaired`: how long the sender has had it. The receiver dates its copy back by as
  // much, so that a broadcast's age (and the window of who may be repaired it) does not
  // restart at each member it is repaired to.
  uint32_t age_ms = 0;
};

// Which application broadcast (UserBroadcast's identity), in a push/pull's digest.
struct BroadcastId {
  std::string origin;
  uint32_t epoch = 0;
  uint32_t seq = 0;
};

struct PushPull {
  bool join = false;
  std::vector<PushNodeState> nodes;
  Bytes user_state;
  // Broadcast repair (not in the reference; app_broadcasts.cpp). In a request: the
  // broadcasts the initiator received in the last `repair_window_ms` (0 = it wants no
  // repair). In the reply: those of the responder's recent ones the initiator lacks.
  uint32_t repair_window_ms = 0;
  std::vector<BroadcastId> broadcast_digest;
  std::vector<UserBroadcast> broadcast_repair;
};

struct UserMsg {
  Bytes payload;
};

struct ErrResp {
  std::string error;
};

// Append only: the variant index is part of codec tables.
using Message = std::variant<Ping, IndirectPing, Ack, Nack, Suspect, Alive, Dead, PushPull,
                             UserMsg, ErrResp, UserBroadcast>;

}  // namespace memberlist::core
