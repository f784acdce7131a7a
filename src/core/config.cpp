// Config presets (reference §1.3) and validation.
#include "core/config.h"

#include <string>

namespace memberlist::core {

Config Config::lan() { return Config{}; }

Config Config::wan() {
  Config c;
  c.tcp_timeout = 30s;
  c.suspicion_mult = 6;
  c.push_pull_interval = 60s;
  c.probe_interval = 5s;
  c.probe_timeout = 3s;
  c.gossip_interval = 500ms;
  c.gossip_nodes = 4;
  c.gossip_to_the_dead_time = 60s;
  return c;
}

Config Config::local() {
  Config c;
  c.tcp_timeout = 1s;
  c.indirect_checks = 1;
  c.retransmit_mult = 2;
  c.suspicion_mult = 3;
  c.push_pull_interval = 15s;
  c.probe_interval = 1s;
  c.probe_timeout = 200ms;
  c.gossip_interval = 100ms;
  c.gossip_to_the_dead_time = 15s;
  return c;
}

Vsn Config::vsn() const {
  return Vsn{kProtocolVersionMin, kProtocolVersionMax, protocol_version,
             delegate_protocol_min, delegate_protocol_max, delegate_protocol_version};
}

namespace {
Status bad(const std::string& knob, const std::string& why) {
  return Status::error(Errc::invalid, "invalid config " + knob + ": " + why);
}
}  // namespace

Status Config::validate() const {
  if (name.empty()) return bad("name", "must not be empty");
  if (protocol_version < kProtocolVersionMin || protocol_version > kProtocolVersionMax)
    return bad("protocol_version", "must be in [" + std::to_string(kProtocolVersionMin) + ", " +
                                       std::to_string(kProtocolVersionMax) + "]");
  if (delegate_protocol_min > delegate_protocol_max)
    return bad("delegate_protocol_min", "must not exceed delegate_protocol_max");
  if (tcp_timeout <= Duration::zero()) return bad("tcp_timeout", "must be positive");
  if (indirect_checks < 0) return bad("indirect_checks", "must not be negative");
  if (retransmit_mult < 1) return bad("retransmit_mult", "must be at least 1");
  if (suspicion_mult < 1) return bad("suspicion_mult", "must be at least 1");
  if (suspicion_max_timeout_mult < 1) return bad("suspicion_max_timeout_mult", "must be at least 1");
  if (push_pull_interval < Duration::zero()) return bad("push_pull_interval", "must not be negative");
  if (probe_interval < Duration::zero()) return bad("probe_interval", "must not be negative");
  if (probe_timeout <= Duration::zero()) return bad("probe_timeout", "must be positive");
  if (awareness_max_multiplier < 1) return bad("awareness_max_multiplier", "must be at least 1");
  if (gossip_interval < Duration::zero()) return bad("gossip_interval", "must not be negative");
  if (gossip_nodes < 0) return bad("gossip_nodes", "must not be negative");
  if (gossip_to_the_dead_time < Duration::zero())
    return bad("gossip_to_the_dead_time", "must not be negative");
  if (udp_buffer_size < 64 || udp_buffer_size > 65507)
    return bad("udp_buffer_size", "must be in [64, 65507]");
  if (post_join_push_pulls < 0 || post_join_push_pulls > kMaxPostJoinPushPulls)
    return bad("post_join_push_pulls", "must be in [0, " + std::to_string(kMaxPostJoinPushPulls) + "]");
  if (max_repair_broadcasts > kMaxRepairBroadcasts)
    return bad("max_repair_broadcasts", "must be at most " + std::to_string(kMaxRepairBroadcasts));
  if (dead_node_reclaim_time < Duration::zero())
    return bad("dead_node_reclaim_time", "must not be negative");
  if (reconnect_interval < Duration::zero()) return bad("reconnect_interval", "must not be negative");
  if (reconnect_timeout < Duration::zero()) return bad("reconnect_timeout", "must not be negative");
  if (max_reconnect_members < 1) return bad("max_reconnect_members", "must be at least 1");
  if (max_best_effort_size < 64 || max_best_effort_size > 65507)
    return bad("max_best_effort_size", "must be in [64, 65507]");
  if (max_user_msg_size < 1) return bad("max_user_msg_size", "must be at least 1");
  if (queue_check_interval < Duration::zero()) return bad("queue_check_interval", "must not be negative");
  if (max_push_nodes < 1) return bad("max_push_nodes", "must be at least 1");
  if (max_broadcast_origins < 1) return bad("max_broadcast_origins", "must be at least 1");
  if (max_replies_per_packet < 1) return bad("max_replies_per_packet", "must be at least 1");
  if (max_queued_broadcasts < 1) return bad("max_queued_broadcasts", "must be at least 1");
  if (max_queued_broadcast_bytes < udp_buffer_size)
    return bad("max_queued_broadcast_bytes", "must hold at least one datagram (udp_buffer_size)");
  if (meta_max_size > 65535) return bad("meta_max_size", "must not exceed 65535");
  if (meta.size() > meta_max_size)
    return bad("meta", "is " + std::to_string(meta.size()) + " bytes, the limit (meta_max_size) is " +
                           std::to_string(meta_max_size));
  return Status::success();
}

}  // namespace memberlist::core
