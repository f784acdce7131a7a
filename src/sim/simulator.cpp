#include "sim/simulator.h"

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>

#include "wire/wire.h"

namespace memberlist::sim {

namespace {

// splitmix64: turns (seed, id, epoch) into well-spread per-core seeds.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

const wire::FramingOptions kFraming{};

}  // namespace

// What every event touches comes first (one cache line); the config, read only at
// (re)start, last.
struct Simulator::Node {
  std::optional<core::Core> core;        // in place: one pointer less to chase per event
  bool crashed = false;
  bool paused = false;                   // see pause(); what came due waits in `deferred`
  uint32_t epoch = 0;                    // bumped by restart(): drops the old process's I/O
  uint32_t timer_gen = 0;                // only the newest timer event fires (32 bits keep
                                         // the event's closure within std::function's buffer)
  std::optional<Instant> timer_at;
  int64_t known = 0;                     // members this core lists as Alive/Suspect (events)
  NodeCounters counters;
  std::optional<uint64_t> join_stream;
  std::optional<core::Status> join_result;
  std::vector<std::function<void()>> deferred;  // came due while paused, in order
  core::Address addr;
  core::Config config;
};

Simulator::Simulator(Options opts)
    : opts_(std::move(opts)),
      codec_(opts_.codec ? opts_.codec : wire::make_flatbuffers_codec()),
      net_(mix(opts_.seed)) {
  net_.set_default_link(opts_.link);
}

Simulator::~Simulator() = default;

core::Address Simulator::address_of(NodeId id) {
  uint32_t v = id + 1;
  return core::Address::v4(10, uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v), 7946);
}

Simulator::Node& Simulator::node(NodeId id) {
  if (id >= nodes_.size()) throw std::out_of_range("sim: no such node");
  return *nodes_[id];
}

const Simulator::Node& Simulator::node(NodeId id) const {
  if (id >= nodes_.size()) throw std::out_of_range("sim: no such node");
  return *nodes_[id];
}

std::optional<NodeId> Simulator::lookup(const core::Address& a) const {
  // Inverse of address_of().
  if (!a.is_v4() || a.port != 7946 || a.ip[12] != 10) return std::nullopt;
  uint32_t v = (uint32_t(a.ip[13]) << 16) | (uint32_t(a.ip[14]) << 8) | a.ip[15];
  if (v == 0 || v > nodes_.size()) return std::nullopt;
  return v - 1;
}

void Simulator::start_core(NodeId id) {
  Node& n = node(id);
  n.config.seed = mix(opts_.seed ^ mix(id) ^ (uint64_t(n.epoch) << 40));
  n.core.reset();
  n.core.emplace(n.config, codec_, now());
}

NodeId Simulator::add_node(core::Config config) {
  NodeId id = NodeId(nodes_.size());
  auto n = std::make_unique<Node>();
  if (config.name.empty()) config.name = "node-" + std::to_string(id);
  n->addr = address_of(id);
  config.advertise = n->addr;
  n->config = std::move(config);
  nodes_.push_back(std::move(n));
  net_.set_crashed(id, false);
  start_core(id);
  flush(id);
  return id;
}

void Simulator::seed_membership(size_t view) {
  const size_t n = nodes_.size();
  std::vector<core::NodeInfo> all;
  all.reserve(n);
  for (const auto& node : nodes_) all.push_back(node->core->local_node());
  std::mt19937_64 rng(mix(opts_.seed ^ 0x5eedull));
  std::vector<core::NodeInfo> sample;
  for (NodeId id = 0; id < n; ++id) {
    Node& node = *nodes_[id];
    if (node.crashed) continue;
    size_t added = 0;
    if (view >= n - 1) {
      added = node.core->seed_members(all, now());
    } else {
      // Distinct random others (Floyd's sampling keeps it O(view)).
      sample.clear();
      std::vector<NodeId> picked;
      for (size_t j = n - 1 - view; j < n - 1; ++j) {
        NodeId t = NodeId(rng() % (j + 1));
        if (std::find(picked.begin(), picked.end(), t) != picked.end()) t = NodeId(j);
        picked.push_back(t);
      }
      for (NodeId t : picked) sample.push_back(all[t >= id ? t + 1 : t]);
      added = node.core->seed_members(sample, now());
    }
    node.known += int64_t(added);
    flush(id);
  }
}

void Simulator::join(NodeId id, NodeId seed) {
  Node& n = node(id);
  if (n.crashed) return;
  n.join_result.reset();
  n.join_stream = n.core->join(address_of(seed), now());
  flush(id);
}

std::optional<core::Status> Simulator::join_result(NodeId id) const { return node(id).join_result; }

core::Status Simulator::leave(NodeId id) {
  Node& n = node(id);
  if (n.crashed) return core::Status::error(core::Errc::state, "node is crashed");
  core::Status s = n.core->leave(now());
  flush(id);
  return s;
}

core::Status Simulator::update_meta(NodeId id, core::Bytes meta) {
  Node& n = node(id);
  if (n.crashed) return core::Status::error(core::Errc::state, "node is crashed");
  core::Status s = n.core->update_meta(std::move(meta), now());
  flush(id);
  return s;
}

core::Status Simulator::queue_broadcast(NodeId id, std::string name, core::Bytes payload) {
  Node& n = node(id);
  if (n.crashed) return core::Status::error(core::Errc::state, "node is crashed");
  uint64_t bid = 0;
  core::Status s = n.core->queue_broadcast(std::move(name), std::move(payload), bid, now());
  flush(id);
  return s;
}

void Simulator::crash(NodeId id) {
  Node& n = node(id);
  n.crashed = true;
  n.paused = false;
  n.deferred.clear();
  n.timer_gen++;
  n.timer_at.reset();
  net_.set_crashed(id, true);
}

bool Simulator::crashed(NodeId id) const { return node(id).crashed; }

void Simulator::restart(NodeId id) {
  Node& n = node(id);
  n.epoch++;
  n.crashed = false;
  n.paused = false;
  n.deferred.clear();
  n.timer_gen++;
  n.timer_at.reset();
  n.join_stream.reset();
  n.join_result.reset();
  n.known = 0;
  net_.set_crashed(id, false);
  start_core(id);
  flush(id);
}

void Simulator::set_slow(NodeId id, Duration delay) {
  node(id);
  net_.set_slow(id, delay);
}

void Simulator::pause(NodeId id) {
  Node& n = node(id);
  if (!n.crashed) n.paused = true;
}

void Simulator::resume(NodeId id) {
  Node& n = node(id);
  if (!n.paused) return;
  n.paused = false;
  // Scheduled now, in order: the queue runs same-instant actions in the order scheduled.
  for (auto& fn : n.deferred) queue_.schedule(now(), std::move(fn));
  n.deferred.clear();
}

bool Simulator::paused(NodeId id) const { return node(id).paused; }

void Simulator::defer(NodeId id, std::function<void()> fn) { node(id).deferred.push_back(std::move(fn)); }

void Simulator::at(Instant t, std::function<void()> fn) {
  queue_.schedule(t, [this, fn = std::move(fn)] {
    trace(Kind::Script, 0, 0);
    fn();
  });
}

void Simulator::run_until(Instant t) { queue_.run_until(t); }

std::optional<Instant> Simulator::run_until(const std::function<bool()>& pred, Instant deadline,
                                            Duration check_every) {
  while (true) {
    if (pred()) return now();
    if (now() >= deadline) return std::nullopt;
    run_until(std::min(deadline, now() + check_every));
  }
}

const core::Core& Simulator::core(NodeId id) const { return *node(id).core; }
const std::string& Simulator::name(NodeId id) const { return node(id).config.name; }

std::optional<NodeId> Simulator::id_of(const std::string& name) const {
  for (NodeId i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->config.name == name) return i;
  }
  return std::nullopt;
}

const NodeCounters& Simulator::counters(NodeId id) const { return node(id).counters; }

uint64_t Simulator::known_pairs() const {
  int64_t sum = 0;
  for (const auto& n : nodes_)
    if (!n->crashed) sum += n->known;
  return uint64_t(sum);
}

std::optional<core::NodeState> Simulator::state_seen(NodeId observer, NodeId subject) const {
  const std::string& want = name(subject);
  for (const auto& info : core(observer).all_nodes()) {
    if (info.name == want) return info.state;
  }
  return std::nullopt;
}

bool Simulator::all_see(const std::vector<NodeId>& observers, const std::vector<NodeId>& subjects,
                        core::NodeState state) const {
  for (NodeId o : observers) {
    std::map<std::string, core::NodeState> seen;
    for (auto& info : core(o).all_nodes()) seen.emplace(std::move(info.name), info.state);
    for (NodeId s : subjects) {
      auto it = seen.find(name(s));
      if (it == seen.end() || it->second != state) return false;
    }
  }
  return true;
}

// ---- event plumbing -----------------------------------------------------------------------

void Simulator::trace(Kind kind, NodeId a, NodeId b, std::span<const uint8_t> data) {
  trace_.add(uint64_t(now().count()));
  trace_.add((uint64_t(kind) << 56) | (uint64_t(a) << 28) | b);
  if (!data.empty()) trace_.add(data);
}

void Simulator::flush(NodeId id) {
  Node& n = node(id);
  if (n.crashed) return;
  core::Core& c = *n.core;
  while (auto t = c.poll_transmit()) send_packet(id, std::move(*t));
  while (auto r = c.poll_stream()) open_stream(id, std::move(*r));
  while (auto e = c.poll_event()) {
    n.known += e->type == core::EventType::Join ? 1 : e->type == core::EventType::Leave ? -1 : 0;
    if (event_tap_) event_tap_(id, *e);
    if (!opts_.record_events) continue;
    events_.push_back(MembershipEvent{now(), id, e->type, std::move(e->node.name), e->node.state,
                                      e->node.incarnation});
  }
  while (c.poll_ping_result()) {
  }
  while (auto note = c.poll_notification()) {
    if (notification_tap_) notification_tap_(id, *note);
  }
  arm_timer(id);
}

void Simulator::arm_timer(NodeId id) {
  Node& n = node(id);
  std::optional<Instant> due = n.core->poll_timeout();
  if (due == n.timer_at) return;  // that event is already in the queue
  n.timer_at = due;
  uint32_t gen = ++n.timer_gen;
  if (!due) return;
  queue_.schedule(*due, [this, id, gen] { fire_timer(id, gen); });
}

void Simulator::fire_timer(NodeId id, uint32_t gen) {
  Node& n = node(id);
  if (n.crashed || n.timer_gen != gen) return;
  if (n.paused) {
    defer(id, [this, id, gen] { fire_timer(id, gen); });
    return;
  }
  n.timer_at.reset();
  trace(Kind::Timer, id, id);
  n.core->handle_timeout(now());
  flush(id);
}

void Simulator::send_packet(NodeId from, core::Transmit t) {
  Node& src = node(from);
  core::Bytes frame = wire::seal_packet(kFraming, t.payload);
  src.counters.packets_sent++;
  src.counters.bytes_sent += frame.size();
  std::optional<NodeId> to = lookup(t.to);
  if (!to) {
    src.counters.packets_blocked++;
    return;
  }
  if (tap_) tap_(from, *to, t.payload);
  Duration delay{};
  switch (net_.send_datagram(from, *to, delay)) {
    case Fate::Delivered:
      queue_.schedule(now() + delay, [this, from, to = *to, frame = std::move(frame)] {
        deliver_packet(from, to, frame);
      });
      break;
    case Fate::Lost:
      src.counters.packets_lost++;
      break;
    default:
      src.counters.packets_blocked++;
      break;
  }
}

void Simulator::deliver_packet(NodeId from, NodeId to, const core::Bytes& frame) {
  Node& dst = node(to);
  if (dst.paused && !dst.crashed) {
    defer(to, [this, from, to, frame] { deliver_packet(from, to, frame); });
    return;
  }
  // A packet already on the wire still arrives if its sender crashed meanwhile.
  if (dst.crashed || !net_.reachable(from, to) || net_.inbound_blocked(to)) {
    node(from).counters.packets_blocked++;
    return;
  }
  trace(Kind::Packet, from, to, frame);
  dst.counters.packets_received++;
  dst.counters.bytes_received += frame.size();
  // One receive buffer for every delivery (handle_packet does not keep it): no allocation.
  if (!wire::open_packet(kFraming, frame, rx_).ok()) {
    dst.counters.bad_frames++;
    return;
  }
  dst.core->handle_packet(address_of(from), rx_, now());
  flush(to);
}

void Simulator::fail_stream(NodeId id, uint64_t stream, Instant at, core::Errc code,
                            const char* why) {
  uint32_t epoch = node(id).epoch;
  queue_.schedule(at, [this, id, epoch, stream, code, why] {
    finish_stream(id, epoch, stream, core::Status::error(code, why), {});
  });
}

void Simulator::open_stream(NodeId from, core::StreamRequest r) {
  Node& src = node(from);
  core::Bytes frame = wire::seal_stream_message(kFraming, r.payload);
  src.counters.streams_opened++;
  src.counters.stream_bytes_sent += frame.size();
  std::optional<NodeId> to = lookup(r.to);
  Duration delay{};
  if (!to || net_.send_stream(from, *to, delay) != Fate::Delivered) {
    // Nobody answers the SYN: the dial times out at the deadline.
    fail_stream(from, r.id, r.deadline, core::Errc::timeout, "sim: connect timed out");
    return;
  }
  queue_.schedule(now() + delay, [this, from, epoch = src.epoch, to = *to, id = r.id,
                                  frame = std::move(frame), expect = r.expect_reply,
                                  deadline = r.deadline] {
    deliver_stream(from, epoch, to, id, frame, expect, deadline);
  });
}

namespace {

// Undoes wire::seal_stream_message: header, then body.
core::Status open_stream_frame(const core::Bytes& frame, core::Bytes& payload) {
  if (frame.size() < wire::kStreamHeaderSize) {
    return core::Status::error(core::Errc::protocol, "sim: short stream frame");
  }
  size_t len = 0;
  std::span<const uint8_t, wire::kStreamHeaderSize> header(frame.data(), wire::kStreamHeaderSize);
  core::Status s = wire::parse_stream_header(kFraming, header, len);
  if (!s.ok()) return s;
  if (len != frame.size() - wire::kStreamHeaderSize) {
    return core::Status::error(core::Errc::protocol, "sim: stream length mismatch");
  }
  return wire::open_stream_message(
      kFraming, std::span<const uint8_t>(frame).subspan(wire::kStreamHeaderSize), payload);
}

}  // namespace

void Simulator::deliver_stream(NodeId from, uint32_t from_epoch, NodeId to, uint64_t id,
                               const core::Bytes& frame, bool expect_reply, Instant deadline) {
  Node& dst = node(to);
  if (dst.paused && !dst.crashed) {
    defer(to, [this, from, from_epoch, to, id, frame, expect_reply, deadline] {
      deliver_stream(from, from_epoch, to, id, frame, expect_reply, deadline);
    });
    return;
  }
  if (dst.crashed || !net_.reachable(from, to) || net_.inbound_blocked(to)) {
    fail_stream(from, id, deadline, core::Errc::timeout, "sim: stream timed out");
    return;
  }
  if (now() > deadline) {
    fail_stream(from, id, now(), core::Errc::timeout, "sim: stream deadline passed");
    return;
  }
  trace(Kind::StreamRequest, from, to, frame);
  dst.counters.stream_bytes_received += frame.size();
  core::Bytes payload;
  if (!open_stream_frame(frame, payload).ok()) {
    dst.counters.bad_frames++;
    fail_stream(from, id, now(), core::Errc::io, "sim: connection closed");
    return;
  }
  std::optional<core::Bytes> reply = dst.core->handle_stream(address_of(from), payload, now());
  flush(to);

  Duration delay{};
  Fate back = net_.send_stream(to, from, delay);
  if (back != Fate::Delivered || now() + delay > deadline) {
    fail_stream(from, id, deadline, core::Errc::timeout, "sim: stream timed out");
    return;
  }
  if (!expect_reply) {
    // One-way message: the writer learns nothing more than that it went out.
    queue_.schedule(now() + delay, [this, from, from_epoch, id] {
      finish_stream(from, from_epoch, id, core::Status::success(), {});
    });
    return;
  }
  if (!reply) {
    fail_stream(from, id, now() + delay, core::Errc::io, "sim: closed without a reply");
    return;
  }
  core::Bytes reply_frame = wire::seal_stream_message(kFraming, *reply);
  dst.counters.stream_bytes_sent += reply_frame.size();
  queue_.schedule(now() + delay, [this, from, from_epoch, to, id, deadline,
                                  reply_frame = std::move(reply_frame)] {
    if (!net_.reachable(from, to) || net_.inbound_blocked(from)) {
      fail_stream(from, id, deadline, core::Errc::timeout, "sim: stream timed out");
      return;
    }
    finish_stream(from, from_epoch, id, core::Status::success(), reply_frame);
  });
}

void Simulator::finish_stream(NodeId id, uint32_t epoch, uint64_t stream, core::Status status,
                              const core::Bytes& frame) {
  Node& n = node(id);
  if (n.crashed || n.epoch != epoch) return;
  if (n.paused) {
    defer(id, [this, id, epoch, stream, status, frame] { finish_stream(id, epoch, stream, status, frame); });
    return;
  }
  trace(Kind::StreamResponse, id, NodeId(stream), frame);
  core::Bytes payload;
  if (status.ok() && !frame.empty()) {
    n.counters.stream_bytes_received += frame.size();
    if (!open_stream_frame(frame, payload).ok()) {
      n.counters.bad_frames++;
      status = core::Status::error(core::Errc::protocol, "sim: bad reply frame");
    }
  }
  if (!status.ok()) n.counters.streams_failed++;
  core::Status outcome = n.core->handle_stream_response(stream, status, payload, now());
  if (n.join_stream == stream) {
    n.join_stream.reset();
    n.join_result = outcome;
  }
  flush(id);
}

}  // namespace memberlist::sim
