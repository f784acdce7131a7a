// Shared helpers of the runtime tests: fast Local-preset options, polling with a deadline,
// and an event recorder.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "runtime/node.h"

namespace memberlist::runtime::test {

using namespace std::chrono_literals;

// Short intervals so that the protocol moves quickly on loopback.
inline Options fast_options(const std::string& name, const std::string& bind = "127.0.0.1") {
  Options o;
  o.core = core::Config::local();
  o.core.name = name;
  o.core.probe_interval = 200ms;
  o.core.probe_timeout = 100ms;
  o.core.gossip_interval = 50ms;
  o.core.suspicion_mult = 2;
  o.core.push_pull_interval = 2s;
  o.core.gossip_to_the_dead_time = 5s;
  o.core.seed = std::hash<std::string>{}(name);
  o.bind_addr = bind;
  o.bind_port = 0;
  return o;
}

// Polls `cond` until it holds or `limit` passes (generous: the machine is shared).
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 30s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

// Records events delivered to a node's callback.
struct Recorder {
  std::mutex mu;
  std::vector<core::Event> events;

  Callbacks callbacks() {
    Callbacks cb;
    cb.on_event = [this](const core::Event& e) {
      std::lock_guard<std::mutex> l(mu);
      events.push_back(e);
    };
    return cb;
  }
  bool saw(core::EventType type, const std::string& name, core::NodeState state) {
    std::lock_guard<std::mutex> l(mu);
    for (const auto& e : events) {
      if (e.type == type && e.node.name == name && e.node.state == state) return true;
    }
    return false;
  }
};

inline std::shared_ptr<Node> make_node(const std::shared_ptr<Runtime>& rt, Options o,
                                       Callbacks cb = {}) {
  Status st;
  auto n = Node::create(rt, std::move(o), std::move(cb), st);
  EXPECT_TRUE(n) << st.message;
  return n;
}

inline std::string addr_of(const Node& n) { return n.advertise_address().to_string(); }

inline bool has_member(const Node& n, const std::string& name) {
  for (const auto& m : n.members()) {
    if (m.name == name) return true;
  }
  return false;
}

// The sum of a metric's series (those carrying `label` = `value`, if given).
inline double metric(const Node& n, const std::string& name, const std::string& label = {},
                     const std::string& value = {}) {
  double v = 0;
  for (const auto& m : n.metrics()) {
    if (m.name != name) continue;
    bool labelled = label.empty();
    for (const auto& l : m.labels) labelled = labelled || (l.name == label && l.value == value);
    if (labelled) v += m.value;
  }
  return v;
}

}  // namespace memberlist::runtime::test
