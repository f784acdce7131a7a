// Core::Impl: the protocol state machine's state and the declarations of its parts. The
// member functions live in one file per concern (as the reference's state.go, net.go,
// suspicion.go, ...):
//   membership.cpp      alive/suspect/dead/refute rules, suspicion and its confirmations,
//                       reaping, local metadata updates (§3.8)
//   probe.cpp           probe scheduling, direct/indirect/TCP fallback probes, acks and nacks,
//                       the helper side of indirect pings, ping(), awareness updates (§3.3-3.4)
//   gossip.cpp          gossip ticks, sending, packing and piggybacking (§3.6)
//   push_pull.cpp       push/pull, joins, local state and merges, incoming streams (§3.7)
//   app_broadcasts.cpp  the application's broadcasts (not in the reference)
//   core.cpp            the public Core methods, input dispatch, timers, outputs
// Small helpers that every tick runs stay inline here.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/awareness.h"
#include "core/core.h"
#include "core/name_index.h"
#include "core/queue.h"
#include "core/seen_origins.h"
#include "core/timers.h"

namespace memberlist::core {

inline bool dead_or_left(NodeState s) { return s == NodeState::Dead || s == NodeState::Left; }

inline double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

inline NodeInfo info_of(const Alive& a) { return NodeInfo{a.node, a.addr, a.meta, NodeState::Alive, a.incarnation, a.vsn}; }
inline NodeInfo info_of(const PushNodeState& n) { return NodeInfo{n.name, n.addr, n.meta, n.state, n.incarnation, n.vsn}; }

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
    std::unique_ptr<Suspicion> suspicion;  // a pointer keeps the record small at 10^4 members
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
  struct ReconnectAck {  // the ping of a reconnect attempt (reconnect.cpp)
    std::string node;
    Address addr;
  };
  struct AckHandler {
    std::variant<ProbeAck, RelayAck, PingAck, ReconnectAck> kind;
    uint64_t timer = 0;
  };

  struct PendingStream {
    enum Kind { PushPullReq, TcpPing, UserMsgReq } kind;
    bool join = false;
    uint32_t seq = 0;
    Address to;
    Instant started{};
    enum Reconnect : uint8_t { NoReconnect, ToMember, ToSeed } reconnect = NoReconnect;
  };

  Config cfg;
  std::shared_ptr<const Codec> codec;
  std::shared_ptr<Delegate> delegate;
  Awareness awareness;
  TransmitLimitedQueue queue;       // membership news
  TransmitLimitedQueue user_queue;  // application broadcasts (ours and forwarded)
  Metrics metrics;
  Metrics::Cached gossip_timer{"memberlist.gossip"}, probe_timer{"memberlist.probeNode"};  // per tick
  Status start_status;
  int hook_depth = 0;               // > 0 while a Delegate hook runs
  size_t user_msg_overhead = 0;     // bytes a UserMsg adds to its payload (at most)

  // update_meta() tokens whose broadcast is still queued.
  std::set<uint64_t> pending_tokens;
  uint64_t next_token = 0;

  // Application broadcasts.
  uint32_t broadcast_epoch = 0;
  uint32_t broadcast_seq = 0;
  uint64_t next_broadcast_id = 0;
  SeenOrigins seen;  // whose broadcasts we have seen (app_broadcasts.cpp)
  // Broadcast repair (Config::max_repair_broadcasts): what we sent or received lately, in
  // the order we got them; `at` is when it was sent or came by gossip (repaired copies are
  // dated back by the age they came with).
  struct RecentBroadcast {
    UserBroadcast m;
    Instant at{};
    uint64_t done_id = 0;  // ours, fully retransmitted: its BroadcastDone waits for the horizon
  };
  std::deque<RecentBroadcast> recent_broadcasts;
  // The settle exchange (app_broadcasts.cpp): one extra push/pull once broadcast news stops
  // arriving. Wanted since `news_first`, last news at `news_last`.
  struct SettleExchange {
    bool wanted = false;
    Instant news_first{}, news_last{};
    uint64_t timer = 0;
    std::array<Instant, 2> started{};  // the last two settle exchanges started, oldest first
    size_t count = 0;                  // settle exchanges started so far (up to 2 counted)
  } settle;
  Instant member_since{};   // our start, then our first successful join
  bool joined_once = false;

  std::vector<std::unique_ptr<NodeRec>> nodes;  // probe order
  NameIndex<NodeRec> node_map;
  NodeRec* me = nullptr;  // our own record (never reaped)
  size_t self_pos = 0;    // its position in `nodes`
  size_t by_state[4] = {0, 0, 0, 0};  // listed records by NodeState
  size_t probe_index = 0;
  uint32_t seq_no = 0;
  uint32_t incarnation = 0;
  bool left = false;
  bool leave_done = false;

  std::optional<Probe> probe;
  bool probe_tick_pending = false;  // a probe tick arrived while a probe ran
  bool gossip_idle = false;         // no gossip timer: nothing was queued at the last tick
  Instant gossip_grid{};            // the last gossip tick's deadline
  std::vector<uint64_t> burst_timers;  // pending post-join push/pulls
  // Automatic reconnection (reconnect.cpp): dead members to try, oldest death first, and
  // the addresses given to join().
  struct DeadMember {
    std::string name;
    Address addr;
    Instant since{};
  };
  std::deque<DeadMember> reconnect_members;
  std::vector<Address> seeds;
  size_t next_seed = 0;
  uint64_t reconnect_timer = 0;
  // Its own random draws, so that turning reconnection on leaves every other draw (probe
  // order, gossip targets, staggers) as it was: same seed, same protocol run until a member
  // dies.
  uint64_t reconnect_rng = 0;
  uint64_t reconnect_random() {
    uint64_t x = (reconnect_rng += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  std::map<uint32_t, AckHandler> ack_handlers;
  std::map<uint64_t, PendingStream> streams;
  uint64_t next_stream_id = 0;
  uint64_t next_ping_id = 0;

  TimerHeap timers;

  std::deque<Transmit> transmits;
  std::deque<StreamRequest> stream_requests;
  std::deque<Event> events;
  std::deque<PingResult> ping_results;
  std::deque<Notification> notifications;

  Stats st;
  uint64_t conflicts = 0;
  // Last: its 2.5 KB state would otherwise sit between the fields every tick touches.
  std::mt19937_64 rng;

  Impl(Config c, std::shared_ptr<const Codec> cd)
      : cfg(std::move(c)),
        codec(std::move(cd)),
        delegate(cfg.delegate),
        awareness(cfg.awareness_max_multiplier),
        queue(cfg.retransmit_mult),
        user_queue(cfg.retransmit_mult),
        seen(cfg.max_broadcast_origins),
        reconnect_rng(cfg.seed ^ 0x7265636f6e6e6563ULL),
        rng(cfg.seed) {
    // A UserMsg's size over its payload's, padding included: the worst of a few sizes.
    for (size_t n = 1; n <= 8; ++n) {
      size_t enc = codec->encode(UserMsg{Bytes(n)}).size();
      user_msg_overhead = std::max(user_msg_overhead, enc > n ? enc - n : 0);
    }
  }

  // ---- helpers ------------------------------------------------------------------------
  void log(LogLevel level, const std::string& msg) const {
    if (cfg.log) cfg.log(level, msg);
  }

  // Calls a Delegate hook (the caller checked `delegate`), marking that one runs.
  template <class F>
  auto hook(F&& f) {
    struct Depth {
      int& d;
      explicit Depth(int& x) : d(x) { ++d; }
      ~Depth() { --d; }
    } depth(hook_depth);
    return f(*delegate);
  }

  // Incarnations above this are refused. A node adds one only when it refutes or updates
  // itself, so no real node gets near; without the bound, one forged message could push a
  // node to UINT32_MAX, where its refutation wraps to 0 (the reference wraps).
  static constexpr uint32_t kMaxIncarnation = (1u << 31) - 1;
  bool incarnation_refused(uint32_t inc, const std::string& node, const char* what) {
    if (inc <= kMaxIncarnation) return false;
    bad("bad_incarnation", LogLevel::Warn,
        std::string("Ignoring a ") + what + " message for '" + node + "': incarnation " + std::to_string(inc) +
            " is beyond " + std::to_string(kMaxIncarnation));
    return true;
  }
  // Whether a node with these versions could be a member with us: the pairwise form of
  // verify_protocol. A node that cannot would fail every later push/pull through us.
  Status speaks_with_us(const Vsn& v) const;

  // Replies the datagram being handled may still cause (Config::max_replies_per_packet);
  // unlimited outside handle_packet (a stream carries one request).
  uint32_t replies_left = UINT32_MAX;
  bool take_reply() {
    if (replies_left == 0) {
      bad("reply_budget");
      return false;
    }
    --replies_left;
    return true;
  }

  // Malformed or unexpected input: counted in total and by reason; returns how many of this
  // reason so far.
  uint64_t bad(const char* reason) {
    st.bad_messages++;
    MetricLabels labels{{"reason", reason}};
    metrics.incr("memberlist.bad_messages", 1, labels);
    return static_cast<uint64_t>(metrics.counter("memberlist.bad_messages", labels));
  }
  // The same, logged at `level` (the reference's) for the 1st, 2nd, 4th... of its reason
  // with the count so far, and at debug otherwise: one line per datagram under a flood
  // would cost more than the datagram.
  void bad(const char* reason, LogLevel level, const std::string& msg) {
    uint64_t n = bad(reason);
    if (!keeps_level(n)) return log(LogLevel::Debug, msg);
    log(level, n == 1 ? msg : msg + " (" + std::to_string(n) + " of this kind so far)");
  }

  void apply_awareness(int delta) {
    if (awareness.apply_delta(delta)) {
      log(LogLevel::Debug, "Health score " + std::to_string(awareness.score()));
      metrics.set_gauge("memberlist.health.score", awareness.score());
    }
  }

  // The most a broadcast may take so that gossip can carry it in one datagram.
  size_t max_broadcast_size() const {
    const size_t over = codec->pack_header_overhead() + codec->pack_part_overhead();
    return cfg.udp_buffer_size > over ? cfg.udp_buffer_size - over : 0;
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

  // A timer of `kind` at `at`; fire() runs it. `seq` and `node` are the payload some kinds
  // carry (see TimerKind).
  uint64_t schedule(Instant at, TimerKind kind, uint32_t seq = 0, std::string_view node = {}) {
    return timers.add(at, kind, seq, node);
  }

  void cancel(uint64_t& id) {
    if (id == 0) return;
    timers.cancel(id);
    id = 0;
  }

  NodeRec* find(std::string_view name) { return node_map.find(name); }
  const NodeRec* find(std::string_view name) const { return node_map.find(name); }
  NodeRec& self() { return *me; }
  const NodeRec& self() const { return *me; }
  bool is_self(const NodeRec& r) const { return &r == me; }

  size_t est_num_nodes() const { return nodes.size(); }

  bool any_alive_other() const {
    for (const auto& n : nodes)
      if (!dead_or_left(n->info.state) && !is_self(*n)) return true;
    return false;
  }

  // kRandomNodes: up to k distinct nodes not excluded. Small lists are shuffled; large lists
  // are sampled at random (3n tries), then topped up, so an eligible node is never missed.
  // The records stay valid until membership changes: use them before anything can reap.
  template <class Exclude>
  std::vector<const NodeRec*> k_random_nodes(int k, const Exclude& exclude) {
    std::vector<const NodeRec*> out;
    for (size_t i : k_random_positions(k, [&](size_t pos) { return exclude(*nodes[pos]); }))
      out.push_back(nodes[i].get());
    return out;
  }

  // The same by position in `nodes`, with `exclude` asked about positions: a caller that
  // can decide without the record (see gossip) touches no record at all.
  template <class Exclude>
  std::vector<size_t> k_random_positions(int k, const Exclude& exclude) {
    std::vector<size_t> out;
    if (k <= 0) return out;
    const size_t n = nodes.size();
    if (n < 3 * static_cast<size_t>(k)) {
      std::vector<size_t> copy(n);
      for (size_t i = 0; i < n; ++i) copy[i] = i;
      shuffle(copy);
      for (size_t i : copy) {
        if (exclude(i)) continue;
        out.push_back(i);
        if (out.size() >= static_cast<size_t>(k)) break;
      }
      return out;
    }
    for (size_t i = 0; i < 3 * n && out.size() < static_cast<size_t>(k); ++i) {
      const size_t pos = random_index(n);
      if (exclude(pos)) continue;
      if (std::find(out.begin(), out.end(), pos) == out.end()) out.push_back(pos);
    }
    // The reference stops after 3n draws even if an eligible node was never drawn (with
    // 3 nodes and 1 indirect check, 2.6% of failed direct probes then ask no helper). When
    // the draws come up short, fill up from the eligible rest in random order.
    if (out.size() < static_cast<size_t>(k)) {
      std::vector<size_t> rest;
      for (size_t pos = 0; pos < n; ++pos)
        if (!exclude(pos) && std::find(out.begin(), out.end(), pos) == out.end()) rest.push_back(pos);
      shuffle(rest);
      for (size_t pos : rest) {
        if (out.size() >= static_cast<size_t>(k)) break;
        out.push_back(pos);
      }
    }
    return out;
  }

  // ---- sending (gossip.cpp) --------------------------------------------------------------
  // One datagram per pack_max_parts() parts; a single part goes out as is.
  void send_parts(const Address& to, std::vector<Bytes> parts);
  std::vector<Bytes> get_broadcasts(size_t overhead, size_t limit);
  void send_with_piggyback(const Address& to, const Message& m);

  void broadcast(const std::string& node, const Message& m, TransmitLimitedQueue::Done done = {}) {
    queue.queue_named(node, codec->encode(m), std::move(done));
  }

  Alive self_alive() const {
    const NodeRec& me = self();
    return Alive{me.info.incarnation, cfg.name, me.info.addr, me.info.meta, me.info.vsn};
  }

  void emit(EventType type, const NodeInfo& n) { events.push_back(Event{type, n}); }

  // ---- membership state machine (§3.8, membership.cpp) --------------------------------------
  Status check_meta(const Bytes& meta) const;
  void insert_node(std::unique_ptr<NodeRec> rec);

  // Every state change of a listed record goes through here, so that the counts by state
  // (stats(), the node.instances gauges) need no scan of the member list.
  void set_state(NodeRec& r, NodeState to) {
    by_state[static_cast<size_t>(r.info.state)]--;
    by_state[static_cast<size_t>(to)]++;
    r.info.state = to;
  }

  void clear_suspicion(NodeRec& r) {
    if (r.suspicion) {
      cancel(r.suspicion->timer);
      r.suspicion.reset();
    }
  }

  void refute(NodeRec& me, uint32_t accused);
  void alive_node(const Alive& a, bool bootstrap, Instant now, TransmitLimitedQueue::Done done = {});
  void suspect_node(const Suspect& s, Instant now);
  bool confirm(NodeRec& r, const std::string& from, Instant now);
  void suspicion_expired(const std::string& name, Instant now);
  void dead_node(const Dead& d, Instant now);
  void reset_nodes(Instant now);
  Status update_meta(Bytes meta, Instant now, uint64_t* token);

  // ---- probing, acks, nacks, helper side (§3.3-3.4, probe.cpp) ------------------------------
  // A ping carries what its receiver uses: the target's name (a restarted node under a new
  // name must not answer) and where to reply when that is not the packet's source. Our
  // name (the reference's SourceNode, for its name-aware transports) is left out: no
  // receiver of ours reads it, and it is a third of a probe's bytes.
  Ping make_ping(uint32_t seq, const std::string& target) const {
    return Ping{seq, target, cfg.advertise_is_source ? Address{} : cfg.advertise, {}};
  }

  void probe_tick(Instant deadline, Instant now);
  void run_probe(Instant now);
  void probe_node(const NodeInfo& node, Instant now);
  void probe_direct_timeout(Instant now);
  void send_indirect(Instant now);
  void probe_reaped(Instant now);
  void end_probe(int awareness_delta, Instant now);
  void probe_failed(Instant now);
  void probe_tcp_wait_over(Instant now);
  Status tcp_ping_done(uint64_t id, const PendingStream& ps, const Status& transport,
                       std::span<const uint8_t> reply, Instant now);
  void handle_ack(const Ack& a, Instant now);
  void handle_nack(const Nack& n);
  void handle_ping(const Address& from, const Ping& p);
  void handle_indirect_ping(const Address& from, const IndirectPing& ind, Instant now);
  void indirect_ping_timeout(uint32_t seq);
  uint64_t ping(const std::string& name, const Address& addr, Instant now);
  void ping_timeout(uint32_t seq, const std::string& name);

  // ---- gossip (§3.6, gossip.cpp) ----------------------------------------------------------
  void gossip_tick(Instant deadline, Instant now);
  void schedule_gossip(Instant now);
  void gossip(Instant now);
  bool nothing_to_gossip() const { return queue.size() == 0 && user_queue.size() == 0 && !delegate; }

  // Called when an entry point returns: restarts an idle gossip timer once news is queued.
  void resume_gossip(Instant now) {
    if (!gossip_idle || nothing_to_gossip()) return;
    gossip_idle = false;
    schedule_gossip(now);
  }
  // Entry points that may queue news hold one of these.
  struct ResumeGossip {
    Impl& s;
    Instant now;
    ~ResumeGossip() { s.resume_gossip(now); }
  };

  // ---- push/pull and streams (§3.7, push_pull.cpp) -----------------------------------------
  void push_pull_tick(Instant now, bool exchange);
  bool push_pull_random(Instant now);  // false: no Alive member to exchange with
  void start_join_burst(Instant now);
  PushPull local_state(bool join);
  uint64_t start_push_pull(const Address& to, bool join, Instant now);
  Status verify_protocol(const std::vector<PushNodeState>& remote) const;
  void merge_state(const std::vector<PushNodeState>& remote, Instant now);
  Status check_merge(const PushPull& pp, bool join);
  void apply_merge(const PushPull& pp, bool join, Instant now);
  std::optional<Bytes> handle_stream(const Address& from, std::span<const uint8_t> data, Instant now);
  Status push_pull_done(const PendingStream& ps, const Status& transport, std::span<const uint8_t> reply,
                        Instant now);

  // ---- automatic reconnection (reconnect.cpp) ----------------------------------------------
  void remember_dead(const NodeRec& r, Instant now);
  void forget_dead(const std::string& name);
  void remember_seed(const Address& a, Instant now);
  void arm_reconnect(Instant now);
  void reconnect_tick(Instant now);
  void reconnect_acked(const ReconnectAck& r, Instant now);
  void reconnect_ping_timeout(uint32_t seq);
  bool reconnect_wanted() const;

  // ---- application broadcasts (app_broadcasts.cpp) ------------------------------------------
  SeenEpoch& seen_epoch(const std::string& origin, uint32_t epoch, Instant now);
  // `repaired`: it came in a push/pull reply, not by gossip (delivered, not forwarded).
  void handle_user_broadcast(const UserBroadcast& m, Instant now, bool repaired = false);
  void expire_seen_origins(Instant now);
  Status queue_broadcast(std::string name, Bytes payload, uint64_t& id, Instant now);
  void remember_broadcast(const UserBroadcast& m, Instant at);
  void expire_recent_broadcasts(Instant now);
  // The settle exchange: news_arrived() on each broadcast we queue or first get by gossip;
  // settle_exchange() when its timer fires.
  Duration settle_time() const;
  void news_arrived(Instant now);
  void settle_exchange(Instant now);
  // Ends our broadcasts still waiting in the repair set (Delivered): reset_broadcasts().
  void end_repairs();
  // Broadcast repair needs a bound above 0 and the periodic push/pull that carries it.
  bool repair_on() const { return cfg.max_repair_broadcasts > 0 && cfg.push_pull_interval > Duration::zero(); }
  Duration repair_horizon() const;
  Duration origin_memory() const;
  void ask_for_repairs(PushPull& request, Instant now);
  void add_repairs(PushPull& reply, const PushPull& request, Instant now);
  std::vector<const RecentBroadcast*> lacked_by(const PushPull& peer, Instant now) const;
  // Both return how many broadcasts one side lacked.
  size_t push_repairs(const Address& to, const PushPull& reply, Instant now);
  size_t apply_repairs(const PushPull& reply, Instant now);
  // Holds the application broadcasts to max_queued_broadcasts / _bytes.
  void bound_user_queue();

  // ---- user messages, inputs, metrics (core.cpp) ----------------------------------------------
  void handle_user_msg(const Address& from, const UserMsg& m) {
    if (m.payload.empty()) return;
    metrics.incr("memberlist.user.messages.received");
    notifications.push_back(UserMessage{m.payload, from});
  }

  void handle_message(const Address& from, const Message& m, Instant now);
  void fire(const TimerHeap::Fired& t, Instant now);
  void sample_node_instances();
  void queue_check_tick(Instant now);
};

}  // namespace memberlist::core
