// Synchronous application hooks (the reference's Delegate, MergeDelegate, AliveDelegate and
// PingDelegate, reference §1.5), called from inside Core calls. Asynchronous news (user
// messages, conflicts, ping results, broadcast outcomes) is not here: it comes out of
// Core::poll_notification(), so the application never runs inside the core for those.
//
// Every method has a default that does nothing, so a host implements only what it needs.
//
// When and how the core calls a hook:
// - Only where its own state is consistent: nothing it iterates is touched by the hook.
//   Collections are copied (or the hook is called before/after the loop) first.
// - A hook may call back into the same Core: any const query (members(), local_node(),
//   stats(), metrics(), ...), queue_broadcast(), send_best_effort() and send_reliable().
//   update_meta(), update_node() and leave() refuse with Errc::state while a hook runs;
//   inputs (handle_*) and other commands must not be called from a hook.
// - node_meta() runs inside the Core constructor, when the Core cannot be called yet.
// - Hooks must not block: the driver holds whatever serializes its calls to the Core.
// - Buffers passed in are only valid during the call: copy what you keep.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "core/types.h"

namespace memberlist::core {

class Delegate {
 public:
  virtual ~Delegate() = default;

  // Metadata of the local node, at most `limit` bytes (Config::meta_max_size). Asked by the
  // Core constructor and by Core::update_node(). nullopt = keep the current metadata
  // (Config::meta at start). Too large: refused with Errc::too_large, never truncated.
  virtual std::optional<Bytes> node_meta(size_t limit) {
    (void)limit;
    return std::nullopt;
  }

  // Pull-style broadcasts, asked whenever a datagram is built (gossip, and piggybacked on
  // pings, acks, nacks) after the memberlist's own messages and the built-in broadcast queue
  // took their share. Each returned message travels as one user message (UserMsg) and is
  // delivered to the receiving application as a UserMessage notification. The total of
  // `overhead + size` over the returned messages must not exceed `limit`; a message that does
  // not fit is dropped (counted in memberlist.bad_messages{reason="delegate_broadcast_too_large"}).
  virtual std::vector<Bytes> get_broadcasts(size_t overhead, size_t limit) {
    (void)overhead;
    (void)limit;
    return {};
  }

  // Application state sent with every push/pull, both ways; `join` tells a join from a
  // periodic anti-entropy exchange (the responder echoes the initiator's flag).
  virtual Bytes local_state(bool join) {
    (void)join;
    return {};
  }

  // The remote side's local_state(), after its membership was merged; only if non-empty.
  virtual void merge_remote_state(std::span<const uint8_t> state, bool join) {
    (void)state;
    (void)join;
  }

  // Join push/pulls only, on both sides, before anything is merged: `peers` is the other
  // side's whole node list. A non-ok status cancels the merge; the join fails with
  // Errc::rejected and a message carrying this status's message. When the responder
  // vetoes, it answers with an error instead of its state, so neither side merges
  // anything. When only the joiner vetoes, the joiner merges nothing, but the responder
  // (whose hook agreed) has already merged the joiner, as in the reference.
  virtual Status notify_merge(const std::vector<NodeInfo>& peers) {
    (void)peers;
    return Status::success();
  }

  // An alive message (gossip or push/pull) about another node that would change what we
  // know (new node, newer incarnation, address update). A non-ok status ignores the message:
  // an unknown node stays out. Never asked about the local node. Duplicates that would be
  // ignored anyway are not shown to the hook.
  virtual Status notify_alive(const NodeInfo& peer) {
    (void)peer;
    return Status::success();
  }

  // Payload attached to our acks to UDP pings (not to TCP fallback pings). It must be small:
  // the ack and it must fit one datagram with the piggyback budget.
  virtual Bytes ack_payload() { return {}; }
};

}  // namespace memberlist::core
