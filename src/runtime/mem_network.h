// An in-memory network: many nodes of one process, no sockets. Each node attached to it gets
// a Transport at an address of its own ("10.0.0.1:7946"); datagrams and streams between them
// are carried in memory, with per-link loss, delay and cuts settable at run time.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "runtime/transport.h"

namespace memberlist::runtime {

struct MemEndpoint;

// "10.0.0.1:7946" or "[fd00::1]:7946": an IP literal and a port (no DNS, no default port).
core::Status parse_network_address(const std::string& text, core::Address& out);

class MemNetwork : public std::enable_shared_from_this<MemNetwork> {
 public:
  // One direction of a link. loss: probability in [0, 1] that a datagram is lost (streams are
  // reliable); delay: added to every datagram and to every stream's connection set-up.
  struct Link {
    double loss = 0;
    std::chrono::milliseconds delay{0};
  };
  // Datagrams waiting for a node to read them; beyond this more are dropped (a full socket
  // buffer). Inbound streams not yet accepted, likewise (refused).
  static constexpr size_t kInboxDepth = 4096;
  static constexpr size_t kAcceptBacklog = 256;

  MemNetwork() = default;
  ~MemNetwork();  // stops the delay thread; every transport holds a reference
  MemNetwork(const MemNetwork&) = delete;
  MemNetwork& operator=(const MemNetwork&) = delete;

  // Makes Options::transport for a node at `addr` (an IP and a port). The node fails to
  // start (Errc::io) if a live node already has the address.
  static TransportFactory factory(std::shared_ptr<MemNetwork> net, core::Address addr);

  // Links without a setting of their own.
  void set_default_link(Link l);
  // The link from -> to (one direction).
  void set_link(const core::Address& from, const core::Address& to, Link l);
  // Every link back to the default.
  void clear_links();
  // Cuts every link between a member of `a` and one of `b`, both directions: nothing gets
  // through (a stream's connection fails at once), whatever the link's setting.
  void partition(const std::vector<core::Address>& a, const std::vector<core::Address>& b);
  // Cuts (or restores) every link to and from `addr`.
  void block(const core::Address& addr, bool blocked);
  // Removes every cut and block (link settings stay).
  void heal();

  // ---- for the transports (mem_network.cpp) -----------------------------------------------
  // The link's fate for one datagram or connection: false if it is cut, or the datagram is
  // lost (`datagram`); else `delay`.
  bool pass(const core::Address& from, const core::Address& to, bool datagram, std::chrono::milliseconds& delay);
  std::shared_ptr<MemEndpoint> find(const core::Address& addr);
  bool attach(const std::shared_ptr<MemEndpoint>& ep);
  void detach(const MemEndpoint* ep);
  // Delivers now, or after `delay` on the network's delay thread.
  void deliver(std::shared_ptr<MemEndpoint> to, core::Address from, core::Bytes data, std::chrono::milliseconds delay);

 private:
  using Clock = std::chrono::steady_clock;
  struct Delayed {
    std::weak_ptr<MemEndpoint> to;
    core::Address from;
    core::Bytes data;
  };
  void run_delays();

  std::mutex mu_;
  std::map<core::Address, std::weak_ptr<MemEndpoint>> nodes_;
  Link default_link_;
  std::map<std::pair<core::Address, core::Address>, Link> links_;
  std::set<std::pair<core::Address, core::Address>> cuts_;
  std::set<core::Address> blocked_;
  std::mt19937_64 rng_{std::random_device{}()};
  // The delay thread, started with the first delayed datagram.
  std::multimap<Clock::time_point, Delayed> delayed_;
  std::condition_variable delay_cv_;
  std::thread delay_thread_;
  bool stop_ = false;
};

// A transport whose bytes the host carries (the C ABI's ml_transport): the library hands it
// datagrams and stream messages through `Callbacks`, and the host hands back what it received
// through packet(), stream() and stream_done(), from any thread. One per node.
class HostLink : public std::enable_shared_from_this<HostLink> {
 public:
  struct Callbacks {
    // A sealed datagram to `to`; false: not sent (counted as a dropped send).
    std::function<bool(const core::Address& to, std::span<const uint8_t> data)> send_packet;
    // One whole stream message to `to`; the host completes `token` with stream_done() (the
    // node waits for that only if `expect_reply`). False: refused at once (the stream fails).
    std::function<bool(const core::Address& to, uint64_t token, std::span<const uint8_t> data, bool expect_reply)>
        send_stream;
    // The reply to the inbound stream `token` (has_reply false: none; the stream is over).
    std::function<void(uint64_t token, std::span<const uint8_t> reply, bool has_reply)> stream_reply;
  };
  HostLink(core::Address addr, Callbacks cb) : addr_(addr), cb_(std::move(cb)) {}
  // Options::transport for the one node of this link.
  TransportFactory factory();

  // Errc::state before the node started or after it closed; Errc::too_large over 65507 bytes
  // (datagrams); Errc::not_found for a token that is not (any more) outstanding.
  core::Status packet(const core::Address& from, std::span<const uint8_t> data);
  core::Status stream(const core::Address& from, uint64_t token, std::span<const uint8_t> data);
  // `transport` not ok: the stream failed (Errc::timeout as a timeout, Errc::rejected as a
  // peer that hung up, anything else as a failed connection; its message says why).
  core::Status stream_done(uint64_t token, const core::Status& transport, std::span<const uint8_t> reply);

  // ---- for its transport and streams (mem_network.cpp) ----------------------------------
  struct Pending;
  const core::Address addr_;
  const Callbacks cb_;
  std::mutex mu_;
  std::shared_ptr<MemEndpoint> ep_;  // set when the node starts
  uint64_t next_token_ = 1;
  std::map<uint64_t, std::weak_ptr<Pending>> outgoing_;
};

}  // namespace memberlist::runtime
