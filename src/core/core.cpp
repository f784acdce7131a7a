// The protocol state machine (reference §3): membership, probing, suspicion, gossip,
// push/pull, leave. Every input carries the time; every output is queued for the driver.
#include "core/core.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <variant>

#include "core/awareness.h"
#include "core/formulas.h"
#include "core/queue.h"

namespace memberlist::core {

namespace {

std::string vsn_string(const Vsn& v) {
  return "[" + std::to_string(v.pmin) + " " + std::to_string(v.pmax) + " " + std::to_string(v.pcur) +
         " " + std::to_string(v.dmin) + " " + std::to_string(v.dmax) + " " + std::to_string(v.dcur) +
         "]";
}

bool dead_or_left(NodeState s) { return s == NodeState::Dead || s == NodeState::Left; }

}  // namespace

struct Core::Impl {
  // ---- state --------------------------------------------------------------------------
  struct Suspicion {
    int k = 0;
    int confirmations = 0;
    Duration min{}, max{};
    Instant start{};
    std::set<std::string> confirmed;  // the accuser is in here and never counts
    uint64_t timer = 0;
  };

  struct NodeRec {
    NodeInfo info;
    Instant state_change{};
    std::optional<Suspicion> suspicion;
  };

  // The probe in flight (at most one, as the reference's probe ticker is serial).
  struct Probe {
    uint32_t seq = 0;
    NodeInfo node;  // snapshot at probe start
    Instant sent{};
    Duration interval{};
    bool indirect_sent = false;
    int expected_nacks = 0;
    int nacks = 0;
    uint64_t tcp_stream = 0;  // 0: no TCP ping pending
    bool tcp_ok = false;
    bool acks_timed_out = false;
    uint64_t direct_timer = 0, reap_timer = 0, tcp_wait_timer = 0;
  };

  // Who waits for an ack with a given sequence number.
  struct ProbeAck {};
  struct RelayAck {  // we are the helper of an indirect probe
    uint32_t orig_seq;
    Address reply_to;
    bool nack;
  };
  struct PingAck {  // ping() command
    uint64_t id;
    Instant sent;
  };
  struct AckHandler {
    std::variant<ProbeAck, RelayAck, PingAck> kind;
    uint64_t timer = 0;
  };

  struct PendingStream {
    enum Kind { PushPullReq, TcpPing } kind;
    bool join = false;
    uint32_t seq = 0;
    Address to;
  };

  Config cfg;
  std::shared_ptr<const Codec> codec;
  std::mt19937_64 rng;
  Awareness awareness;
  TransmitLimitedQueue queue;

  std::vector<std::unique_ptr<NodeRec>> nodes;  // probe order
  std::map<std::string, NodeRec*> node_map;
  size_t probe_index = 0;
  uint32_t seq_no = 0;
  uint32_t incarnation = 0;
  bool left = false;
  bool leave_done = false;

  std::optional<Probe> probe;
  std::map<uint32_t, AckHandler> ack_handlers;
  std::map<uint64_t, PendingStream> streams;
  uint64_t next_stream_id = 0;
  uint64_t next_ping_id = 0;

  // Timers: ordered by (deadline, id) so equal deadlines fire in creation order.
  std::map<std::pair<Instant, uint64_t>, std::function<void(Instant)>> timers;
  std::map<uint64_t, Instant> timer_at;
  uint64_t next_timer_id = 0;

  std::deque<Transmit> transmits;
  std::deque<StreamRequest> stream_requests;
  std::deque<Event> events;
  std::deque<PingResult> ping_results;

  Stats st;
  uint64_t conflicts = 0;

  Impl(Config c, std::shared_ptr<const Codec> cd)
      : cfg(std::move(c)),
        codec(std::move(cd)),
        rng(cfg.seed),
        awareness(cfg.awareness_max_multiplier),
        queue(cfg.retransmit_mult) {}

  // ---- helpers ------------------------------------------------------------------------
  void log(LogLevel level, const std::string& msg) const {
    if (cfg.log) cfg.log(level, msg);
  }

  // Uniform-enough index in [0, n); plain modulo keeps the sequence identical on every
  // standard library (std distributions are implementation-defined).
  size_t random_index(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); }

  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[random_index(i)]);
  }

  Duration random_stagger(Duration interval) {
    if (interval <= Duration::zero()) return Duration::zero();
    return Duration(static_cast<int64_t>(rng() % static_cast<uint64_t>(interval.count())));
  }

  uint64_t schedule(Instant at, std::function<void(Instant)> fn) {
    uint64_t id = ++next_timer_id;
    timers.emplace(std::make_pair(at, id), std::move(fn));
    timer_at.emplace(id, at);
    return id;
  }

  void cancel(uint64_t& id) {
    if (id == 0) return;
    if (auto it = timer_at.find(id); it != timer_at.end()) {
      timers.erase({it->second, id});
      timer_at.erase(it);
    }
    id = 0;
  }

  NodeRec* find(const std::string& name) {
    auto it = node_map.find(name);
    return it == node_map.end() ? nullptr : it->second;
  }
  const NodeRec* find(const std::string& name) const {
    auto it = node_map.find(name);
    return it == node_map.end() ? nullptr : it->second;
  }
  NodeRec& self() { return *node_map.at(cfg.name); }
  const NodeRec& self() const { return *node_map.at(cfg.name); }

  size_t est_num_nodes() const { return nodes.size(); }

  bool any_alive_other() const {
    for (const auto& n : nodes)
      if (!dead_or_left(n->info.state) && n->info.name != cfg.name) return true;
    return false;
  }

  // kRandomNodes: up to k distinct nodes not excluded. Small lists are shuffled so the only
  // eligible node is never missed; large lists are sampled at random (3n tries).
  std::vector<NodeInfo> k_random_nodes(int k, const std::function<bool(const NodeRec&)>& exclude) {
    std::vector<NodeInfo> out;
    if (k <= 0) return out;
    const size_t n = nodes.size();
    if (n < 3 * static_cast<size_t>(k)) {
      std::vector<NodeRec*> copy;
      for (auto& p : nodes) copy.push_back(p.get());
      shuffle(copy);
      for (NodeRec* r : copy) {
        if (exclude(*r)) continue;
        out.push_back(r->info);
        if (out.size() >= static_cast<size_t>(k)) break;
      }
      return out;
    }
    for (size_t i = 0; i < 3 * n && out.size() < static_cast<size_t>(k); ++i) {
      const NodeRec& r = *nodes[random_index(n)];
      if (exclude(r)) continue;
      bool dup = std::any_of(out.begin(), out.end(),
                             [&](const NodeInfo& x) { return x.name == r.info.name; });
      if (!dup) out.push_back(r.info);
    }
    return out;
  }

  // ---- sending ------------------------------------------------------------------------
  // One datagram per pack_max_parts() parts; a single part goes out as is.
  void send_parts(const Address& to, std::vector<Bytes> parts) {
    if (parts.empty()) return;
    if (parts.size() == 1) {
      transmits.push_back({to, std::move(parts[0])});
      return;
    }
    const size_t max_parts = std::max<size_t>(1, codec->pack_max_parts());
    for (size_t i = 0; i < parts.size(); i += max_parts) {
      size_t end = std::min(parts.size(), i + max_parts);
      std::vector<Bytes> chunk(std::make_move_iterator(parts.begin() + static_cast<long>(i)),
                               std::make_move_iterator(parts.begin() + static_cast<long>(end)));
      transmits.push_back({to, chunk.size() == 1 ? std::move(chunk[0]) : codec->pack(chunk)});
    }
  }

  std::vector<Bytes> get_broadcasts(size_t overhead, size_t limit) {
    return queue.get_broadcasts(overhead, limit, est_num_nodes());
  }

  // A message plus as many queued broadcasts as fit in udp_buffer_size.
  void send_with_piggyback(const Address& to, const Message& m) {
    std::vector<Bytes> parts;
    parts.push_back(codec->encode(m));
    const size_t part = codec->pack_part_overhead();
    const size_t used = parts[0].size() + codec->pack_header_overhead() + part;
    if (used < cfg.udp_buffer_size) {
      for (auto& b : get_broadcasts(part, cfg.udp_buffer_size - used)) parts.push_back(std::move(b));
    }
    send_parts(to, std::move(parts));
  }

  void broadcast(const std::string& node, const Message& m, TransmitLimitedQueue::Finished fin = {}) {
    queue.queue(codec->encode(m), node, std::move(fin));
  }

  Alive self_alive() const {
    const NodeRec& me = self();
    return Alive{me.info.incarnation, cfg.name, me.info.addr, me.info.meta, me.info.vsn};
  }

  void emit(EventType type, const NodeInfo& n) { events.push_back(Event{type, n}); }

  // ---- membership state machine (§3.8) -------------------------------------------------
  void insert_node(std::unique_ptr<NodeRec> rec) {
    // Append, then swap with a random position: new nodes are probed at a random point.
    size_t n = nodes.size();
    size_t offset = random_index(n);
    node_map[rec->info.name] = rec.get();
    nodes.push_back(std::move(rec));
    std::swap(nodes[offset], nodes[n]);
  }

  void clear_suspicion(NodeRec& r) {
    if (r.suspicion) {
      cancel(r.suspicion->timer);
      r.suspicion.reset();
    }
  }

  void refute(NodeRec& me, uint32_t accused) {
    uint32_t inc = ++incarnation;
    if (accused >= inc) inc = incarnation = accused + 1;
    me.info.incarnation = inc;
    if (awareness.apply_delta(1)) log(LogLevel::Debug, "Health score " + std::to_string(awareness.score()));
    st.refutes++;
    broadcast(cfg.name, self_alive());
  }

  void alive_node(const Alive& a, bool bootstrap, Instant now) {
    if (left && a.node == cfg.name) return;
    if (a.vsn.pmin == 0 || a.vsn.pmax == 0 || a.vsn.pmin > a.vsn.pmax) {
      log(LogLevel::Warn, "Ignoring an alive message for '" + a.node + "' (" + a.addr.to_string() +
                              ") because protocol version(s) are wrong: " + std::to_string(a.vsn.pmin) +
                              " <= " + std::to_string(a.vsn.pcur) + " <= " + std::to_string(a.vsn.pmax) +
                              " should be >0");
      st.bad_messages++;
      return;
    }
    if (a.node.empty() && !bootstrap) {
      st.bad_messages++;
      return;
    }
    NodeRec* r = find(a.node);
    bool updates_addr = false;
    if (r == nullptr) {
      auto rec = std::make_unique<NodeRec>();
      rec->info.name = a.node;
      rec->info.addr = a.addr;
      rec->info.meta = a.meta;
      rec->info.state = NodeState::Dead;
      rec->info.incarnation = 0;
      rec->info.vsn = a.vsn;
      rec->state_change = now;
      r = rec.get();
      insert_node(std::move(rec));
    } else if (r->info.addr != a.addr) {
      bool can_reclaim = cfg.dead_node_reclaim_time > Duration::zero() &&
                         now - r->state_change > cfg.dead_node_reclaim_time;
      if (r->info.state == NodeState::Left || (r->info.state == NodeState::Dead && can_reclaim)) {
        log(LogLevel::Info, "Updating address for left or failed node " + a.node + " from " +
                                r->info.addr.to_string() + " to " + a.addr.to_string());
        updates_addr = true;
      } else {
        log(LogLevel::Error, "Conflicting address for " + a.node + ". Mine: " + r->info.addr.to_string() +
                                 " Theirs: " + a.addr.to_string() + " Old state: " + to_string(r->info.state));
        conflicts++;
        return;
      }
    }

    const bool local = a.node == cfg.name;
    if (a.incarnation <= r->info.incarnation && !local && !updates_addr) return;
    if (a.incarnation < r->info.incarnation && local) return;

    clear_suspicion(*r);
    const NodeState old_state = r->info.state;
    const Bytes old_meta = r->info.meta;

    if (!bootstrap && local) {
      // Same incarnation and same content: our own news coming back.
      if (a.incarnation == r->info.incarnation && a.meta == r->info.meta && a.vsn == r->info.vsn) return;
      refute(*r, a.incarnation);
      log(LogLevel::Warn, "Refuting an alive message for '" + a.node + "' (" + a.addr.to_string() +
                              ") vsn:(" + vsn_string(a.vsn) + " VS " + vsn_string(r->info.vsn) + ")");
    } else {
      broadcast(a.node, a);
      r->info.vsn = a.vsn;
      r->info.incarnation = a.incarnation;
      r->info.meta = a.meta;
      r->info.addr = a.addr;
      if (r->info.state != NodeState::Alive) {
        r->info.state = NodeState::Alive;
        r->state_change = now;
      }
    }

    if (dead_or_left(old_state))
      emit(EventType::Join, r->info);
    else if (old_meta != r->info.meta)
      emit(EventType::Update, r->info);
  }

  void suspect_node(const Suspect& s, Instant now) {
    NodeRec* r = find(s.node);
    if (r == nullptr) return;
    if (s.incarnation < r->info.incarnation) return;

    // Already suspected: a new accuser is an independent confirmation, worth re-gossiping.
    if (r->suspicion) {
      if (confirm(*r, s.from, now)) broadcast(s.node, s);
      return;
    }
    if (r->info.state != NodeState::Alive) return;

    if (s.node == cfg.name) {
      refute(*r, s.incarnation);
      log(LogLevel::Warn, "Refuting a suspect message (from: " + s.from + ")");
      return;
    }
    broadcast(s.node, s);
    st.suspicions++;
    r->info.incarnation = s.incarnation;
    r->info.state = NodeState::Suspect;
    r->state_change = now;

    // k confirmations expected; none if the cluster is too small to give them (minus us
    // and the suspect).
    const size_t n = est_num_nodes();
    int k = cfg.suspicion_mult - 2;
    if (static_cast<int64_t>(n) - 2 < k) k = 0;
    Suspicion sus;
    sus.k = k;
    sus.min = suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval);
    sus.max = sus.min * cfg.suspicion_max_timeout_mult;
    sus.start = now;
    sus.confirmed.insert(s.from);
    Duration timeout = k < 1 ? sus.min : sus.max;
    const std::string name = s.node;
    sus.timer = schedule(now + timeout, [this, name](Instant t) { suspicion_expired(name, t); });
    r->suspicion = std::move(sus);
  }

  // Returns true if `from` is a new confirmation (the timer has been shortened).
  bool confirm(NodeRec& r, const std::string& from, Instant now) {
    Suspicion& s = *r.suspicion;
    if (s.confirmations >= s.k) return false;
    if (!s.confirmed.insert(from).second) return false;
    s.confirmations++;
    Duration remaining = remaining_suspicion_time(s.confirmations, s.k, now - s.start, s.min, s.max);
    cancel(s.timer);
    const std::string name = r.info.name;
    // Overdue timers fire at `now`, on the next handle_timeout.
    s.timer = schedule(remaining > Duration::zero() ? now + remaining : now,
                       [this, name](Instant t) { suspicion_expired(name, t); });
    return true;
  }

  void suspicion_expired(const std::string& name, Instant now) {
    NodeRec* r = find(name);
    if (r == nullptr || !r->suspicion) return;
    r->suspicion->timer = 0;  // fired
    if (r->info.state != NodeState::Suspect) return;
    const int k = r->suspicion->k;
    const int n = r->suspicion->confirmations;
    if (k > 0 && n < k) st.degraded_timeouts++;
    log(LogLevel::Info, "Marking " + name + " as failed, suspect timeout reached (" + std::to_string(n) +
                            " peer confirmations)");
    dead_node(Dead{r->info.incarnation, name, cfg.name}, now);
  }

  void dead_node(const Dead& d, Instant now) {
    NodeRec* r = find(d.node);
    if (r == nullptr) return;
    if (d.incarnation < r->info.incarnation) return;
    clear_suspicion(*r);
    if (dead_or_left(r->info.state)) return;

    if (d.node == cfg.name) {
      if (!left) {
        refute(*r, d.incarnation);
        log(LogLevel::Warn, "Refuting a dead message (from: " + d.from + ")");
        return;
      }
      broadcast(d.node, d, [this] { leave_done = true; });
    } else {
      broadcast(d.node, d);
    }
    r->info.incarnation = d.incarnation;
    r->info.state = d.node == d.from ? NodeState::Left : NodeState::Dead;
    r->state_change = now;
    emit(EventType::Leave, r->info);
  }

  // ---- probing (§3.3) -----------------------------------------------------------------
  void probe_tick(Instant deadline, Instant now) {
    // Like the reference's ticker: ticks that arrive while a probe runs are dropped.
    if (!probe) run_probe(now);
    Instant next = deadline + cfg.probe_interval;
    while (next <= now) next += cfg.probe_interval;
    schedule(next, [this, next](Instant t) { probe_tick(next, t); });
  }

  // Reaps Dead and Left nodes older than gossip_to_the_dead_time, then reshuffles.
  void reset_nodes(Instant now) {
    std::vector<std::unique_ptr<NodeRec>> keep;
    for (auto& n : nodes) {
      bool reap = n->info.name != cfg.name && dead_or_left(n->info.state) &&
                  now - n->state_change > cfg.gossip_to_the_dead_time;
      if (reap) {
        clear_suspicion(*n);
        node_map.erase(n->info.name);
      } else {
        keep.push_back(std::move(n));
      }
    }
    nodes = std::move(keep);
    shuffle(nodes);
  }

  void run_probe(Instant now) {
    size_t checked = 0;
    while (checked < nodes.size()) {
      if (probe_index >= nodes.size()) {
        reset_nodes(now);
        probe_index = 0;
        checked++;
        continue;
      }
      const NodeRec& r = *nodes[probe_index++];
      if (r.info.name == cfg.name || dead_or_left(r.info.state)) {
        checked++;
        continue;
      }
      probe_node(r.info, now);
      return;
    }
  }

  void probe_node(const NodeInfo& node, Instant now) {
    st.probes++;
    Probe p;
    p.interval = awareness.scale_timeout(cfg.probe_interval);
    if (p.interval > cfg.probe_interval) st.degraded_probes++;
    p.seq = ++seq_no;
    p.node = node;
    p.sent = now;
    Ping ping{p.seq, node.name, cfg.advertise, cfg.name};
    if (node.state == NodeState::Alive) {
      send_with_piggyback(node.addr, ping);
    } else {
      // Buddy system: tell the suspect it is suspected so it can refute at once.
      std::vector<Bytes> parts{codec->encode(ping),
                               codec->encode(Suspect{node.incarnation, node.name, cfg.name})};
      send_parts(node.addr, std::move(parts));
    }
    AckHandler h{ProbeAck{}, 0};
    ack_handlers[p.seq] = h;
    p.direct_timer = schedule(now + cfg.probe_timeout, [this](Instant t) { probe_direct_timeout(t); });
    p.reap_timer = schedule(now + p.interval, [this](Instant t) { probe_reaped(t); });
    probe = std::move(p);
  }

  // No direct ack within probe_timeout: ask helpers, and try TCP.
  void probe_direct_timeout(Instant now) {
    Probe& p = *probe;
    p.direct_timer = 0;
    log(LogLevel::Debug, "Failed UDP ping: " + p.node.name + " (timeout reached)");
    send_indirect(now);
  }

  void send_indirect(Instant now) {
    Probe& p = *probe;
    if (p.indirect_sent) return;
    p.indirect_sent = true;
    const std::string target = p.node.name;
    auto helpers = k_random_nodes(cfg.indirect_checks, [&](const NodeRec& r) {
      return r.info.name == cfg.name || r.info.name == target || r.info.state != NodeState::Alive;
    });
    for (const NodeInfo& h : helpers) {
      // Only helpers speaking protocol 4 send nacks.
      bool nack = h.vsn.pmax >= 4;
      if (nack) p.expected_nacks++;
      send_with_piggyback(h.addr, IndirectPing{p.seq, p.node.addr, target, nack, cfg.advertise, cfg.name});
    }
    bool tcp_disabled = cfg.disable_tcp_pings ||
                        (cfg.disable_tcp_pings_for_node && cfg.disable_tcp_pings_for_node(target));
    if (!tcp_disabled && p.node.vsn.pmax >= 3) {
      StreamRequest req;
      req.id = ++next_stream_id;
      req.to = p.node.addr;
      req.payload = codec->encode(Ping{p.seq, target, cfg.advertise, cfg.name});
      req.expect_reply = true;
      req.deadline = p.sent + p.interval;
      streams[req.id] = PendingStream{PendingStream::TcpPing, false, p.seq, p.node.addr};
      p.tcp_stream = req.id;
      stream_requests.push_back(std::move(req));
    }
    (void)now;
  }

  // The ack handler's lifetime (scaled probe interval) is over.
  void probe_reaped(Instant now) {
    Probe& p = *probe;
    p.reap_timer = 0;
    ack_handlers.erase(p.seq);
    if (!p.indirect_sent) {
      cancel(p.direct_timer);
      send_indirect(now);
    }
    p.acks_timed_out = true;
    if (p.tcp_stream != 0) {
      // The TCP ping's deadline is now; wait for the driver to report it, but not forever.
      p.tcp_wait_timer = schedule(now + cfg.probe_timeout, [this](Instant t) {
        probe->tcp_wait_timer = 0;
        probe->tcp_stream = 0;
        probe_failed(t);
      });
      return;
    }
    probe_failed(now);
  }

  void end_probe(int awareness_delta) {
    Probe& p = *probe;
    cancel(p.direct_timer);
    cancel(p.reap_timer);
    cancel(p.tcp_wait_timer);
    ack_handlers.erase(p.seq);
    probe.reset();
    if (awareness.apply_delta(awareness_delta))
      log(LogLevel::Debug, "Health score " + std::to_string(awareness.score()));
  }

  void probe_failed(Instant now) {
    Probe& p = *probe;
    if (p.tcp_ok) {
      log(LogLevel::Warn, "Was able to connect to " + p.node.name +
                              " over TCP but UDP probes failed, network may be misconfigured");
      end_probe(-1);
      return;
    }
    // With nack-capable helpers, missing nacks blame us; without, any failure does.
    int delta = p.expected_nacks > 0 ? std::max(0, p.expected_nacks - p.nacks) : 1;
    NodeInfo node = p.node;
    end_probe(delta);
    st.probe_failures++;
    log(LogLevel::Info, "Suspect " + node.name + " has failed, no acks received");
    suspect_node(Suspect{node.incarnation, node.name, cfg.name}, now);
  }

  // ---- acks, nacks, helper side (§3.4) ---------------------------------------------------
  void handle_ack(const Ack& a, Instant now) {
    auto it = ack_handlers.find(a.seq);
    if (it == ack_handlers.end()) {
      st.bad_messages++;
      return;
    }
    AckHandler h = std::move(it->second);
    ack_handlers.erase(it);
    cancel(h.timer);
    if (std::holds_alternative<ProbeAck>(h.kind)) {
      if (probe && probe->seq == a.seq) end_probe(-1);
    } else if (auto* relay = std::get_if<RelayAck>(&h.kind)) {
      send_with_piggyback(relay->reply_to, Ack{relay->orig_seq, {}});
    } else if (auto* ping = std::get_if<PingAck>(&h.kind)) {
      ping_results.push_back(PingResult{ping->id, true, now - ping->sent});
    }
  }

  void handle_nack(const Nack& n) {
    if (probe && probe->seq == n.seq && ack_handlers.count(n.seq)) {
      probe->nacks++;
      return;
    }
    st.bad_messages++;
  }

  void handle_ping(const Address& from, const Ping& p) {
    if (!p.node.empty() && p.node != cfg.name) {
      log(LogLevel::Warn, "Got ping for unexpected node '" + p.node + "' from=" + from.to_string());
      st.bad_messages++;
      return;
    }
    send_with_piggyback(p.source.empty() ? from : p.source, Ack{p.seq, {}});
  }

  void handle_indirect_ping(const Address& from, const IndirectPing& ind, Instant now) {
    const Address reply_to = ind.source.empty() ? from : ind.source;
    const uint32_t seq = ++seq_no;
    AckHandler h{RelayAck{ind.seq, reply_to, ind.nack}, 0};
    h.timer = schedule(now + cfg.probe_timeout, [this, seq](Instant) {
      auto it = ack_handlers.find(seq);
      if (it == ack_handlers.end()) return;
      RelayAck relay = std::get<RelayAck>(it->second.kind);
      ack_handlers.erase(it);
      if (relay.nack) send_with_piggyback(relay.reply_to, Nack{relay.orig_seq});
    });
    ack_handlers[seq] = std::move(h);
    send_with_piggyback(ind.target, Ping{seq, ind.node, cfg.advertise, cfg.name});
  }

  // ---- gossip (§3.6) ------------------------------------------------------------------
  void gossip_tick(Instant deadline, Instant now) {
    gossip(now);
    Instant next = deadline + cfg.gossip_interval;
    while (next <= now) next += cfg.gossip_interval;
    schedule(next, [this, next](Instant t) { gossip_tick(next, t); });
  }

  void gossip(Instant now) {
    auto targets = k_random_nodes(cfg.gossip_nodes, [&](const NodeRec& r) {
      if (r.info.name == cfg.name) return true;
      switch (r.info.state) {
        case NodeState::Alive:
        case NodeState::Suspect: return false;
        case NodeState::Dead: return now - r.state_change > cfg.gossip_to_the_dead_time;
        case NodeState::Left: return true;
      }
      return true;
    });
    const size_t header = codec->pack_header_overhead();
    if (cfg.udp_buffer_size <= header) return;
    for (const NodeInfo& t : targets) {
      auto msgs = get_broadcasts(codec->pack_part_overhead(), cfg.udp_buffer_size - header);
      if (msgs.empty()) return;
      send_parts(t.addr, std::move(msgs));
    }
  }

  // ---- push/pull (§3.7) ---------------------------------------------------------------
  void push_pull_tick(Instant now) {
    auto peers = k_random_nodes(1, [&](const NodeRec& r) {
      return r.info.name == cfg.name || r.info.state != NodeState::Alive;
    });
    if (!peers.empty()) {
      log(LogLevel::Debug, "Initiating push/pull sync with: " + peers[0].name + " " + peers[0].addr.to_string());
      start_push_pull(peers[0].addr, false, now);
    }
    Instant next = now + push_pull_scale(cfg.push_pull_interval, est_num_nodes());
    schedule(next, [this](Instant t) { push_pull_tick(t); });
  }

  PushPull local_state(bool join) const {
    PushPull pp;
    pp.join = join;
    for (const auto& n : nodes)
      pp.nodes.push_back(PushNodeState{n->info.name, n->info.addr, n->info.meta, n->info.incarnation,
                                       n->info.state, n->info.vsn});
    return pp;
  }

  uint64_t start_push_pull(const Address& to, bool join, Instant now) {
    StreamRequest req;
    req.id = ++next_stream_id;
    req.to = to;
    req.payload = codec->encode(local_state(join));
    req.expect_reply = true;
    req.deadline = now + cfg.tcp_timeout;
    const uint64_t id = req.id;
    streams[id] = PendingStream{PendingStream::PushPullReq, join, 0, to};
    stream_requests.push_back(std::move(req));
    return id;
  }

  Status verify_protocol(const std::vector<PushNodeState>& remote) const {
    uint8_t maxpmin = 0, minpmax = 255, maxdmin = 0, mindmax = 255;
    auto widen = [&](const Vsn& v) {
      maxpmin = std::max(maxpmin, v.pmin);
      minpmax = std::min(minpmax, v.pmax);
      maxdmin = std::max(maxdmin, v.dmin);
      mindmax = std::min(mindmax, v.dmax);
    };
    for (const auto& r : remote)
      if (r.state == NodeState::Alive) widen(r.vsn);
    for (const auto& n : nodes)
      if (n->info.state == NodeState::Alive) widen(n->info.vsn);
    auto check = [&](const std::string& name, const Vsn& v) -> Status {
      if (v.pcur < maxpmin || v.pcur > minpmax)
        return Status::error(Errc::rejected, "Node '" + name + "' protocol version (" + std::to_string(v.pcur) +
                                                 ") is incompatible: [" + std::to_string(maxpmin) + ", " +
                                                 std::to_string(minpmax) + "]");
      if (v.dcur < maxdmin || v.dcur > mindmax)
        return Status::error(Errc::rejected, "Node '" + name + "' delegate protocol version (" +
                                                 std::to_string(v.dcur) + ") is incompatible: [" +
                                                 std::to_string(maxdmin) + ", " + std::to_string(mindmax) + "]");
      return Status::success();
    };
    for (const auto& r : remote)
      if (Status s = check(r.name, r.vsn); !s.ok()) return s;
    for (const auto& n : nodes)
      if (Status s = check(n->info.name, n->info.vsn); !s.ok()) return s;
    return Status::success();
  }

  void merge_state(const std::vector<PushNodeState>& remote, Instant now) {
    for (const auto& r : remote) {
      switch (r.state) {
        case NodeState::Alive: alive_node(Alive{r.incarnation, r.name, r.addr, r.meta, r.vsn}, false, now); break;
        case NodeState::Left: dead_node(Dead{r.incarnation, r.name, r.name}, now); break;
        // A remote "dead" only makes us suspect: we may still reach the node.
        case NodeState::Dead:
        case NodeState::Suspect: suspect_node(Suspect{r.incarnation, r.name, cfg.name}, now); break;
      }
    }
  }

  Status merge_remote(const PushPull& pp, Instant now) {
    if (Status s = verify_protocol(pp.nodes); !s.ok()) return s;
    merge_state(pp.nodes, now);
    return Status::success();
  }

  // ---- inputs -------------------------------------------------------------------------
  void handle_message(const Address& from, const Message& m, Instant now) {
    std::visit(
        [&](const auto& msg) {
          using T = std::decay_t<decltype(msg)>;
          if constexpr (std::is_same_v<T, Ping>) handle_ping(from, msg);
          else if constexpr (std::is_same_v<T, IndirectPing>) handle_indirect_ping(from, msg, now);
          else if constexpr (std::is_same_v<T, Ack>) handle_ack(msg, now);
          else if constexpr (std::is_same_v<T, Nack>) handle_nack(msg);
          else if constexpr (std::is_same_v<T, Alive>) alive_node(msg, false, now);
          else if constexpr (std::is_same_v<T, Suspect>) suspect_node(msg, now);
          else if constexpr (std::is_same_v<T, Dead>) dead_node(msg, now);
          else if constexpr (std::is_same_v<T, UserMsg>) {
            // No user-message delivery in the core yet: accepted and dropped.
          } else {
            log(LogLevel::Warn, "Unexpected message in a packet from=" + from.to_string());
            st.bad_messages++;
          }
        },
        m);
  }
};

// ---- Core -------------------------------------------------------------------------------

Core::Core(Config config, std::shared_ptr<const Codec> codec, Instant now)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(codec))) {
  Impl& s = *impl_;
  // Bootstrap: ourselves, Alive at incarnation 1, with a Join event and an alive broadcast.
  s.alive_node(Alive{++s.incarnation, s.cfg.name, s.cfg.advertise, s.cfg.meta, s.cfg.vsn()}, true, now);
  // Stagger the periodic tasks by a random fraction of their interval.
  if (s.cfg.probe_interval > Duration::zero()) {
    Instant first = now + s.random_stagger(s.cfg.probe_interval);
    s.schedule(first, [&s, first](Instant t) { s.probe_tick(first, t); });
  }
  if (s.cfg.push_pull_interval > Duration::zero()) {
    Instant first = now + s.random_stagger(s.cfg.push_pull_interval);
    s.schedule(first, [&s](Instant t) { s.push_pull_tick(t); });
  }
  if (s.cfg.gossip_interval > Duration::zero() && s.cfg.gossip_nodes > 0) {
    Instant first = now + s.random_stagger(s.cfg.gossip_interval);
    s.schedule(first, [&s, first](Instant t) { s.gossip_tick(first, t); });
  }
}

Core::~Core() = default;

void Core::handle_packet(const Address& from, std::span<const uint8_t> data, Instant now) {
  std::vector<Message> msgs;
  Status s = impl_->codec->decode(data, msgs);
  if (!s.ok()) {
    impl_->st.bad_messages++;
    impl_->log(LogLevel::Error, "Failed to decode packet: " + s.message + " from=" + from.to_string());
  }
  for (const Message& m : msgs) impl_->handle_message(from, m, now);
}

std::optional<Bytes> Core::handle_stream(const Address& from, std::span<const uint8_t> data, Instant now) {
  Impl& s = *impl_;
  std::vector<Message> msgs;
  Status st = s.codec->decode(data, msgs);
  if (!st.ok() || msgs.size() != 1) {
    s.st.bad_messages++;
    std::string why = st.ok() ? "expected exactly one message" : st.message;
    s.log(LogLevel::Error, "Failed to receive stream: " + why + " from=" + from.to_string());
    return s.codec->encode(ErrResp{why});
  }
  const Message& m = msgs[0];
  if (const auto* ping = std::get_if<Ping>(&m)) {
    if (!ping->node.empty() && ping->node != s.cfg.name) {
      s.log(LogLevel::Warn, "Got ping for unexpected node " + ping->node + " from=" + from.to_string());
      s.st.bad_messages++;
      return std::nullopt;
    }
    return s.codec->encode(Ack{ping->seq, {}});
  }
  if (const auto* pp = std::get_if<PushPull>(&m)) {
    // Reply with our state first (as the reference does), then merge theirs.
    Bytes reply = s.codec->encode(s.local_state(pp->join));
    if (Status ms = s.merge_remote(*pp, now); !ms.ok())
      s.log(LogLevel::Error, "Failed push/pull merge: " + ms.message + " from=" + from.to_string());
    return reply;
  }
  if (std::holds_alternative<UserMsg>(m)) return std::nullopt;
  s.st.bad_messages++;
  s.log(LogLevel::Error, "Received invalid msg type on a stream from=" + from.to_string());
  return s.codec->encode(ErrResp{"unexpected message type on a stream"});
}

Status Core::handle_stream_response(uint64_t id, const Status& transport, std::span<const uint8_t> reply,
                                    Instant now) {
  Impl& s = *impl_;
  auto it = s.streams.find(id);
  if (it == s.streams.end()) {
    s.st.bad_messages++;
    return Status::error(Errc::not_found, "unknown stream id " + std::to_string(id));
  }
  Impl::PendingStream ps = it->second;
  s.streams.erase(it);

  if (ps.kind == Impl::PendingStream::TcpPing) {
    bool ok = false;
    Status result = transport;
    if (transport.ok()) {
      std::vector<Message> msgs;
      Status d = s.codec->decode(reply, msgs);
      const Ack* ack = (d.ok() && msgs.size() == 1) ? std::get_if<Ack>(&msgs[0]) : nullptr;
      if (ack == nullptr) {
        s.st.bad_messages++;
        result = Status::error(Errc::protocol, "unexpected reply to a TCP ping");
      } else if (ack->seq != ps.seq) {
        s.st.bad_messages++;
        result = Status::error(Errc::protocol, "sequence number from ack (" + std::to_string(ack->seq) +
                                                   ") doesn't match ping (" + std::to_string(ps.seq) + ")");
      } else {
        ok = true;
      }
    }
    if (!ok) s.log(LogLevel::Error, "Failed fallback TCP ping: " + result.message);
    // Only the probe that sent it cares; a late reply after the probe ended is ignored.
    if (s.probe && s.probe->tcp_stream == id) {
      s.probe->tcp_stream = 0;
      s.probe->tcp_ok = ok;
      if (s.probe->acks_timed_out) {
        s.cancel(s.probe->tcp_wait_timer);
        s.probe_failed(now);
      }
    }
    return result;
  }

  // Push/pull.
  if (!transport.ok()) {
    s.log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + transport.message);
    return transport;
  }
  std::vector<Message> msgs;
  Status d = s.codec->decode(reply, msgs);
  if (!d.ok() || msgs.size() != 1) {
    s.st.bad_messages++;
    Status e = Status::error(Errc::protocol, "bad push/pull reply: " + (d.ok() ? std::string("message count") : d.message));
    s.log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + e.message);
    return e;
  }
  if (const auto* err = std::get_if<ErrResp>(&msgs[0])) {
    Status e = Status::error(Errc::rejected, "remote error: " + err->error);
    s.log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + e.message);
    return e;
  }
  const auto* pp = std::get_if<PushPull>(&msgs[0]);
  if (pp == nullptr) {
    s.st.bad_messages++;
    Status e = Status::error(Errc::protocol, "push/pull reply is not a push/pull message");
    s.log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + e.message);
    return e;
  }
  Status ms = s.merge_remote(*pp, now);
  if (!ms.ok()) s.log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + ms.message);
  return ms;
}

void Core::handle_timeout(Instant now) {
  Impl& s = *impl_;
  while (!s.timers.empty() && s.timers.begin()->first.first <= now) {
    auto node = s.timers.extract(s.timers.begin());
    s.timer_at.erase(node.key().second);
    node.mapped()(now);
  }
}

uint64_t Core::join(const Address& to, Instant now) { return impl_->start_push_pull(to, true, now); }

Status Core::leave(Instant now) {
  Impl& s = *impl_;
  if (s.left) return Status::success();
  s.left = true;
  // Node == From marks a graceful leave for everyone else.
  s.dead_node(Dead{s.self().info.incarnation, s.cfg.name, s.cfg.name}, now);
  return Status::success();
}

bool Core::leave_propagated() const { return impl_->left && (impl_->leave_done || !impl_->any_alive_other()); }

bool Core::has_left() const { return impl_->left; }

uint64_t Core::ping(const std::string& name, const Address& addr, Instant now) {
  Impl& s = *impl_;
  const uint64_t id = ++s.next_ping_id;
  const uint32_t seq = ++s.seq_no;
  Impl::AckHandler h{Impl::PingAck{id, now}, 0};
  h.timer = s.schedule(now + s.cfg.probe_timeout, [&s, seq, id, name](Instant) {
    s.ack_handlers.erase(seq);
    s.log(LogLevel::Debug, "Failed UDP ping: " + name + " (timeout reached)");
    s.ping_results.push_back(PingResult{id, false, {}});
  });
  s.ack_handlers[seq] = std::move(h);
  s.send_with_piggyback(addr, Ping{seq, name, s.cfg.advertise, s.cfg.name});
  return id;
}

std::vector<NodeInfo> Core::members() const {
  std::vector<NodeInfo> out;
  for (const auto& n : impl_->nodes)
    if (!dead_or_left(n->info.state)) out.push_back(n->info);
  std::sort(out.begin(), out.end(), [](const NodeInfo& a, const NodeInfo& b) { return a.name < b.name; });
  return out;
}

size_t Core::num_members() const {
  size_t n = 0;
  for (const auto& r : impl_->nodes)
    if (!dead_or_left(r->info.state)) n++;
  return n;
}

std::vector<NodeInfo> Core::all_nodes() const {
  std::vector<NodeInfo> out;
  for (const auto& n : impl_->nodes) out.push_back(n->info);
  std::sort(out.begin(), out.end(), [](const NodeInfo& a, const NodeInfo& b) { return a.name < b.name; });
  return out;
}

NodeInfo Core::local_node() const { return impl_->self().info; }

int Core::health_score() const { return impl_->awareness.score(); }

Stats Core::stats() const {
  Stats out = impl_->st;
  for (const auto& n : impl_->nodes) {
    switch (n->info.state) {
      case NodeState::Alive: out.alive++; break;
      case NodeState::Suspect: out.suspect++; break;
      case NodeState::Dead: out.dead++; break;
      case NodeState::Left: out.left++; break;
    }
  }
  out.broadcast_queue = impl_->queue.size();
  out.conflicts = impl_->conflicts;
  return out;
}

const Config& Core::config() const { return impl_->cfg; }

std::optional<Instant> Core::poll_timeout() const {
  if (impl_->timers.empty()) return std::nullopt;
  return impl_->timers.begin()->first.first;
}

namespace {
template <class T>
std::optional<T> pop(std::deque<T>& q) {
  if (q.empty()) return std::nullopt;
  T v = std::move(q.front());
  q.pop_front();
  return v;
}
}  // namespace

std::optional<Transmit> Core::poll_transmit() { return pop(impl_->transmits); }
std::optional<StreamRequest> Core::poll_stream() { return pop(impl_->stream_requests); }
std::optional<Event> Core::poll_event() { return pop(impl_->events); }
std::optional<PingResult> Core::poll_ping_result() { return pop(impl_->ping_results); }

}  // namespace memberlist::core
