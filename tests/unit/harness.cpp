#include "harness.h"

#include <algorithm>

namespace memberlist::test {

core::Config test_config(const std::string& name, int index, uint64_t seed) {
  core::Config c = core::Config::local();
  c.name = name;
  c.advertise = addr_of(index);
  c.seed = seed * 1000 + static_cast<uint64_t>(index);
  return c;
}

Core& Cluster::add(core::Config cfg) {
  const std::string name = cfg.name;
  Node& n = nodes_[name];
  n.addr = cfg.advertise;
  cfg.log = [&n](core::LogLevel, std::string_view line) { n.logs.emplace_back(line); };
  n.core = std::make_unique<Core>(std::move(cfg), codec_, now_);
  return *n.core;
}

void Cluster::set_down(const std::string& name, bool down) { nodes_.at(name).down = down; }

Cluster::Node* Cluster::at(const Address& a) {
  for (auto& [name, n] : nodes_)
    if (n.addr == a) return &n;
  return nullptr;
}

uint64_t Cluster::join(const std::string& name, const std::string& seed) {
  return core(name).join(nodes_.at(seed).addr, now_);
}

std::optional<core::Status> Cluster::stream_result(const std::string& name, uint64_t id) const {
  auto it = stream_results_.find({name, id});
  if (it == stream_results_.end()) return std::nullopt;
  return it->second;
}

bool Cluster::logged(const std::string& name, const std::string& needle) const {
  const auto& logs = nodes_.at(name).logs;
  return std::any_of(logs.begin(), logs.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

std::set<std::string> Cluster::alive_view(const std::string& name) {
  std::set<std::string> out;
  for (const auto& n : core(name).members())
    if (n.state == core::NodeState::Alive) out.insert(n.name);
  return out;
}

// Moves every output of every up node onto the network.
void Cluster::flush() {
  for (auto& [name, n] : nodes_) {
    while (auto ev = n.core->poll_event()) n.events.push_back(std::move(*ev));
    while (auto no = n.core->poll_notification()) n.notifications.push_back(std::move(*no));
    while (auto t = n.core->poll_transmit()) {
      if (n.down) continue;
      sent_.push_back({now_, n.addr, t->to, t->payload});
      // What a runtime does: transport bytes go into the core's registry.
      n.core->metrics().incr("memberlist.udp.sent", static_cast<double>(t->payload.size()));
      in_flight_.emplace(now_ + latency, InFlight{false, n.addr, t->to, std::move(t->payload), {}, name});
    }
    while (auto s = n.core->poll_stream()) {
      Bytes copy = s->payload;
      in_flight_.emplace(now_ + latency, InFlight{true, n.addr, s->to, std::move(copy), std::move(*s), name});
    }
  }
}

void Cluster::deliver(InFlight& f) {
  Node* src = &nodes_.at(f.from_name);
  Node* dst = at(f.to);
  if (!f.stream) {
    if (dst == nullptr || dst->down || src->down) return;
    if (drop_packet && drop_packet(f.from, f.to, f.data)) return;
    dst->core->metrics().incr("memberlist.udp.received", static_cast<double>(f.data.size()));
    dst->core->handle_packet(f.from, f.data, now_);
    return;
  }
  core::Status result;
  if (src->down) return;  // the requester is gone: nobody to tell
  if (dst == nullptr || dst->down || (drop_stream && drop_stream(f.from, f.to))) {
    result = src->core->handle_stream_response(f.req.id, core::Status::error(core::Errc::io, "connection refused"),
                                               {}, now_);
  } else {
    auto reply = dst->core->handle_stream(f.from, f.data, now_);
    if (!f.req.expect_reply) {
      result = src->core->handle_stream_response(f.req.id, core::Status::success(), {}, now_);
    } else if (reply) {
      result = src->core->handle_stream_response(f.req.id, core::Status::success(), *reply, now_);
    } else {
      result = src->core->handle_stream_response(f.req.id, core::Status::error(core::Errc::io, "closed"), {}, now_);
    }
  }
  stream_results_[{f.from_name, f.req.id}] = result;
}

// One step: the earliest delivery or timer at or before `limit`. Returns false if none.
bool Cluster::step(Instant limit) {
  flush();
  std::optional<Instant> next;
  if (!in_flight_.empty()) next = in_flight_.begin()->first;
  for (auto& [name, n] : nodes_) {
    if (n.down) continue;
    if (auto t = n.core->poll_timeout(); t && (!next || *t < *next)) next = *t;
  }
  if (!next || *next > limit) return false;
  now_ = std::max(now_, *next);
  while (!in_flight_.empty() && in_flight_.begin()->first <= now_) {
    auto node = in_flight_.extract(in_flight_.begin());
    deliver(node.mapped());
    flush();
  }
  for (auto& [name, n] : nodes_) {
    if (n.down) continue;
    if (auto t = n.core->poll_timeout(); t && *t <= now_) n.core->handle_timeout(now_);
  }
  flush();
  return true;
}

void Cluster::run_until(Instant t) {
  while (step(t)) {
  }
  now_ = std::max(now_, t);
  flush();
}

bool Cluster::run_until_pred(const std::function<bool()>& pred, Duration limit) {
  const Instant end = now_ + limit;
  while (!pred()) {
    if (!step(end)) {
      now_ = end;
      return pred();
    }
  }
  return true;
}

void advance(Core& c, Instant t) {
  while (auto next = c.poll_timeout()) {
    if (*next > t) break;
    c.handle_timeout(*next);
  }
}

std::vector<Decoded> drain(Core& c, const TestCodec& codec) {
  std::vector<Decoded> out;
  while (auto t = c.poll_transmit()) out.push_back({t->to, codec.decode_all(t->payload)});
  return out;
}

}  // namespace memberlist::test
