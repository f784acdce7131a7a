// Protocol knobs of one memberlist, named and defaulted as in the reference's Config
// (../shared/reference/memberlist-protocol.md §1.3). Transport knobs live in runtime::Options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/delegate.h"
#include "core/types.h"

namespace memberlist::core {

using namespace std::chrono_literals;

inline constexpr int kMaxPostJoinPushPulls = 10;
inline constexpr size_t kMaxReconnectSeeds = 16;
// Config::max_repair_broadcasts: the codec's cap on a push/pull's repair lists.
inline constexpr size_t kMaxRepairBroadcasts = 4096;

struct Config {
  std::string name;                    // unique node name (required)
  Address advertise;                   // address peers reach us at (set by the driver)
  // Set by a driver whose datagrams leave from `advertise` itself (bound to that address and
  // port): pings then leave their reply address out, as the receiver answers the packet's
  // source anyway (8 bytes of every probe).
  bool advertise_is_source = false;

  uint8_t protocol_version = 2;        // in [kProtocolVersionMin, kProtocolVersionMax]
  uint8_t delegate_protocol_version = 0;
  uint8_t delegate_protocol_min = 0;
  uint8_t delegate_protocol_max = 0;

  Duration tcp_timeout = 10s;          // stream dial + I/O deadline
  int indirect_checks = 3;
  int retransmit_mult = 4;
  int suspicion_mult = 4;
  int suspicion_max_timeout_mult = 6;  // 1 = no Lifeguard suspicion acceleration
  Duration push_pull_interval = 30s;   // 0 disables periodic push/pull
  Duration probe_interval = 1s;        // 0 disables probing
  Duration probe_timeout = 500ms;
  bool disable_tcp_pings = false;
  std::function<bool(std::string_view node)> disable_tcp_pings_for_node;  // optional
  int awareness_max_multiplier = 8;    // 1 = no Lifeguard health awareness
  Duration gossip_interval = 200ms;    // 0 disables gossip
  int gossip_nodes = 3;
  Duration gossip_to_the_dead_time = 30s;
  size_t udp_buffer_size = 1400;       // piggyback budget per datagram
  Duration dead_node_reclaim_time = 0s;  // 0 = a dead node's name never moves address
  // Post-join anti-entropy burst (not in the reference): after each successful join
  // push/pull, this many extra periodic-style push/pulls with a random Alive member, at
  // 2, 4, 8, ... gossip intervals (each +- half an interval of jitter). Nodes that join one
  // seed at once learn each other in a few gossip rounds instead of waiting for the first
  // periodic push/pull. A later join restarts the burst. Needs push_pull_interval and
  // gossip_interval > 0. In [0, kMaxPostJoinPushPulls]; 0 = the reference's behaviour.
  int post_join_push_pulls = 3;

  // Automatic reconnection (not in the reference; Serf does it above memberlist): every
  // reconnect_interval the node picks one member it has marked dead (never one that left)
  // and pings it by name at the address it had; if it answers, the node pushes/pulls with it
  // as a join does. Both sides then learn that the other thinks them dead and refute, so a
  // healed partition, or a node that stopped receiving and declared everyone dead, comes
  // back without a call from the application. A dead member is tried for reconnect_timeout
  // after its death, unless it is seen alive again, leaves, or its name is seen at another
  // address (a node replaced under the same name is never pinged at the old address, and a
  // node of another name there does not answer the named ping). 0 = off. The timer only
  // runs while there is something to try.
  Duration reconnect_interval = 30s;
  Duration reconnect_timeout = 24h;
  // Dead members remembered for reconnection; beyond, the longest dead is forgotten first.
  size_t max_reconnect_members = 1024;
  // While no other member is alive, each reconnect tick also re-joins one of the addresses
  // given to join() (the seeds, the last kMaxReconnectSeeds distinct ones, in turn): dead
  // members may all have been forgotten or have moved, and the seeds are the addresses the
  // application chose as the way into its cluster. A seed has no name to check, so it gets
  // the join push/pull directly. false = only dead members are tried.
  bool reconnect_seeds = true;

  Bytes meta;                          // local node metadata
  size_t meta_max_size = 512;

  // Application hooks (delegate.h); null = none.
  std::shared_ptr<Delegate> delegate;
  // Largest datagram (as encoded by the codec, before framing) send_best_effort() builds.
  // The default leaves 507 bytes of a 65507-byte UDP payload for framing (label, CRC,
  // encryption); the driver lowers it if its framing may add more.
  size_t max_best_effort_size = 65000;
  // Largest payload of send_reliable() and of a user message accepted from a stream, as the
  // reference's maxUserMsgBytes.
  size_t max_user_msg_size = 20u << 20;
  // How often the queue depth and members-by-state gauges are sampled; 0 = never.
  Duration queue_check_interval = 30s;

  // Bounds on what a push/pull may carry (the reference's maxPushStateNodes); a larger
  // one is refused (Errc::too_large) before anything is merged.
  size_t max_push_nodes = 1u << 20;
  // Origins whose application broadcasts are remembered for de-duplication (at least 1).
  // An origin is forgotten gossip_to_the_dead_time after its last broadcast reached us, or
  // earlier, least recently heard first, when more origins than this broadcast within that
  // time; a copy of a forgotten origin's broadcast still travelling would then be delivered
  // again. Raise it for clusters with more broadcasting nodes.
  size_t max_broadcast_origins = 4096;
  // What one received datagram may make the node send: the acks to its pings and the probes
  // its indirect ping requests start. Further pings in the same datagram are dropped
  // (memberlist.bad_messages{reason="reply_budget"}): a compound of many pings naming another
  // address would otherwise turn one small datagram into a flood towards that address. A
  // real datagram carries one ping or one request.
  uint32_t max_replies_per_packet = 4;
  // The application broadcasts the node holds for gossip, its own and those it forwards:
  // at most this many, of at most this many bytes in all. Beyond, the most-transmitted go
  // first (they have done most of their job; our own then finish with Dropped), counted in
  // memberlist.user.broadcasts.dropped. Without it, peers (or anyone, without a key) could
  // make the node hold every broadcast they invent until gossip drains it, a few a second.
  size_t max_queued_broadcasts = 4096;
  size_t max_queued_broadcast_bytes = 4u << 20;
  // Broadcast repair (not in the reference): each node keeps the application broadcasts it
  // sent or received in the last two push/pull intervals, at most this many (the oldest go
  // first), and its periodic push/pulls carry their digest, so that the peer answers with
  // the ones it has and we lack. A broadcast that gossip failed to bring to a member thus
  // reaches it at its next push/pulls while fresh; and a node that got broadcast news starts
  // one or two extra exchanges (at most two per interval) once the news stops coming, so that
  // this happens within about one interval (app_broadcasts.cpp: the settle exchange). Only
  // broadcasts sent after a node joined are repaired to it. Origins are then remembered for
  // de-duplication for three push/pull intervals, if longer than gossip_to_the_dead_time.
  // 0 = best effort only, as the reference.
  // At most kMaxRepairBroadcasts.
  size_t max_repair_broadcasts = 256;
  // The IP allow-list (the reference's CIDRsAllowed): an alive message putting a node at an
  // address this refuses is ignored ("Rejected node" log line, memberlist.node.rejected
  // counter). Null = every address is allowed. Set by the driver from its CIDR list.
  std::function<bool(const Address&)> address_allowed;

  uint64_t seed = 0;                   // randomness (shuffles, fan-out, staggers) comes from here

  // Log sink; the core formats messages, the driver routes them. Optional.
  std::function<void(LogLevel, std::string_view)> log;

  static Config lan();
  static Config wan();
  static Config local();

  Vsn vsn() const;
  // Range checks of every knob; the message names the knob.
  Status validate() const;
};

}  // namespace memberlist::core
