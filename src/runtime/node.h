// The Boost.Asio runtime: a thread pool shared by many memberlists, and Node, which owns
// one core::Core, its UDP and TCP sockets on one port, and its timer, and drives the core
// exactly as the simulator does. Host callbacks run on a per-node serial executor, never
// while the node's lock is held.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/core.h"
#include "wire/wire.h"

namespace memberlist::runtime {

using core::Duration;
using core::Status;

// A fixed pool of threads running one io_context; share it between many nodes.
class Runtime {
 public:
  explicit Runtime(unsigned threads);
  ~Runtime();  // stops and joins the threads; every Node must be destroyed first
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  struct Impl;
  Impl& impl() { return *impl_; }
 private:
  std::unique_ptr<Impl> impl_;
};

struct Options {
  core::Config core = core::Config::lan();
  std::string bind_addr = "0.0.0.0";   // IPv4 or IPv6 literal
  uint16_t bind_port = 7946;           // 0: the kernel picks; advertise_address() reports it
  std::string advertise_addr;          // empty: derived from the bind address
  uint16_t advertise_port = 0;         // 0: the bound port
  size_t handoff_queue_depth = 1024;   // inbound datagrams waiting for the core
  wire::FramingOptions framing;
};

struct Callbacks {
  std::function<void(const core::Event&)> on_event;
  std::function<void(core::LogLevel, const std::string&)> on_log;
  core::LogLevel log_level = core::LogLevel::Info;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  // Binds the sockets and starts the protocol. On error returns nullptr and sets `status`.
  static std::shared_ptr<Node> create(std::shared_ptr<Runtime> runtime, Options options,
                                      Callbacks callbacks, Status& status);
  ~Node();

  // Each entry: optional "name/" prefix, then host, host:port or [v6]:port; host may be a DNS
  // name. Blocks until every address was tried; returns how many were reached, and an error
  // only if none was.
  int join(const std::vector<std::string>& addresses, Status& status);
  std::vector<core::NodeInfo> members() const;
  size_t num_members() const;
  core::NodeInfo local_node() const;
  int health_score() const;
  core::Stats stats() const;
  core::Address advertise_address() const;
  // One UDP ping; RTT or a timeout error.
  Status ping(const std::string& name, Duration& rtt);
  // Broadcasts our leave and waits until it has propagated or `timeout` passed.
  Status leave(Duration timeout);
  // Stops sockets and timers without leaving; idempotent. Waits for running callbacks.
  Status shutdown();
  // True on the thread that is running one of this node's callbacks (blocking calls refuse).
  bool in_callback() const;

  struct Impl;
 private:
  Node();
  std::unique_ptr<Impl> impl_;
};

// Parses one join entry ("name/host:port", "[::1]:7946", "host") into name, host and port.
Status parse_join_address(const std::string& entry, uint16_t default_port, std::string& name,
                          std::string& host, uint16_t& port);

}  // namespace memberlist::runtime
