// A Delegate for tests: every hook records its calls and does what its std::function says
// (or the default when unset). `core` may be set after the Core exists, for hooks that call
// back into it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"
#include "core/delegate.h"

namespace memberlist::test {

inline core::Bytes bytes(const std::string& s) { return core::Bytes(s.begin(), s.end()); }
inline std::string str(const core::Bytes& b) { return std::string(b.begin(), b.end()); }

struct TestDelegate : core::Delegate {
  core::Core* core = nullptr;

  std::function<std::optional<core::Bytes>(size_t)> on_node_meta;
  std::function<std::vector<core::Bytes>(size_t, size_t)> on_get_broadcasts;
  std::function<core::Bytes(bool)> on_local_state;
  std::function<core::Status(const std::vector<core::NodeInfo>&)> on_notify_merge;
  std::function<core::Status(const core::NodeInfo&)> on_notify_alive;
  core::Bytes ack;

  std::vector<size_t> meta_limits;
  std::vector<std::pair<size_t, size_t>> broadcast_calls;  // (overhead, limit)
  std::vector<bool> local_state_calls;                     // join flags
  std::vector<std::pair<std::string, bool>> merged;        // (state, join)
  std::vector<std::vector<core::NodeInfo>> merge_calls;
  std::vector<std::string> alive_calls;                    // node names
  int ack_calls = 0;

  std::optional<core::Bytes> node_meta(size_t limit) override {
    meta_limits.push_back(limit);
    return on_node_meta ? on_node_meta(limit) : std::nullopt;
  }
  std::vector<core::Bytes> get_broadcasts(size_t overhead, size_t limit) override {
    broadcast_calls.emplace_back(overhead, limit);
    return on_get_broadcasts ? on_get_broadcasts(overhead, limit) : std::vector<core::Bytes>{};
  }
  core::Bytes local_state(bool join) override {
    local_state_calls.push_back(join);
    return on_local_state ? on_local_state(join) : core::Bytes{};
  }
  void merge_remote_state(std::span<const uint8_t> state, bool join) override {
    merged.emplace_back(std::string(state.begin(), state.end()), join);
  }
  core::Status notify_merge(const std::vector<core::NodeInfo>& peers) override {
    merge_calls.push_back(peers);
    return on_notify_merge ? on_notify_merge(peers) : core::Status::success();
  }
  core::Status notify_alive(const core::NodeInfo& peer) override {
    alive_calls.push_back(peer.name);
    return on_notify_alive ? on_notify_alive(peer) : core::Status::success();
  }
  core::Bytes ack_payload() override {
    ack_calls++;
    return ack;
  }
};

}  // namespace memberlist::test
