// The protocol state machine (reference §3): membership, probing, suspicion, gossip,
// push/pull, leave. Every input carries the time; every output is queued for the driver.
#include "core/core.h"

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string_view>
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

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

NodeInfo info_of(const Alive& a) { return NodeInfo{a.node, a.addr, a.meta, NodeState::Alive, a.incarnation, a.vsn}; }
NodeInfo info_of(const PushNodeState& n) { return NodeInfo{n.name, n.addr, n.meta, n.state, n.incarnation, n.vsn}; }

// Queue names of forwarded application broadcasts. Node names (the keys of membership
// news) never contain NUL, so these never collide with them.
std::string broadcast_key(const std::string& origin, const std::string& name) {
  return std::string("\0ub\0", 4) + origin + std::string(1, '\0') + name;
}

BroadcastOutcome outcome_of(FinishReason r) {
  switch (r) {
    case FinishReason::Transmitted: return BroadcastOutcome::Delivered;
    case FinishReason::Replaced: return BroadcastOutcome::Replaced;
    case FinishReason::Dropped: return BroadcastOutcome::Dropped;
  }
  return BroadcastOutcome::Dropped;
}

// Which application broadcasts of one origin (in one epoch) this node has seen: every seq
// up to `floor`, plus the ones in `above`. Seqs are given out 1, 2, 3... by the origin, so
// the set stays small; if more than kWindow arrive out of order, the oldest gaps are given
// up (a message that late would be dropped, never delivered twice).
struct SeenEpoch {
  static constexpr size_t kWindow = 4096;
  static constexpr size_t kMaxNames = 4096;
  uint32_t epoch = 0;
  uint32_t floor = 0;
  std::set<uint32_t> above;
  std::map<std::string, uint32_t> latest_named;  // newest seq seen per broadcast name

  // Marks `seq` seen; false if it was already.
  bool first_time(uint32_t seq) {
    if (seq <= floor || !above.insert(seq).second) return false;
    while (above.size() > kWindow) {
      floor = *above.begin();
      above.erase(above.begin());
    }
    while (!above.empty() && *above.begin() == floor + 1) {
      floor++;
      above.erase(above.begin());
    }
    return true;
  }
};

// Members by name: open addressing with linear probing, kept at most 3/4 full; a slot holds
// a record pointer and its name's hash -- 16 bytes a slot, ~21 a member, instead of a heap
// node per member (a core of a 10,000-node cluster holds 10,000 of them). The hash beside
// the pointer lets a lookup pass other names without reading their records, which are
// cold in a large simulation, and makes erase and growth rehash-free. Only looked up,
// never iterated, so its order cannot reach any output. Rec needs `info.name`; records
// never rename.
template <class Rec>
class NameIndex {
 public:
  Rec* find(std::string_view name) const {
    if (slots_.empty()) return nullptr;
    const size_t h = hash(name);
    for (size_t i = h & mask();; i = (i + 1) & mask()) {
      const Slot& s = slots_[i];
      if (s.rec == nullptr) return nullptr;
      if (s.hash == h && s.rec->info.name == name) return s.rec;
    }
  }
  // `r`'s name must not be present.
  void insert(Rec* r) {
    if (4 * (size_ + 1) > 3 * slots_.size()) grow(std::max<size_t>(16, 2 * slots_.size()));
    place(Slot{r, hash(r->info.name)});
    size_++;
  }
  void erase(std::string_view name) {
    if (slots_.empty()) return;
    const size_t h = hash(name);
    size_t i = h & mask();
    for (;; i = (i + 1) & mask()) {
      if (slots_[i].rec == nullptr) return;
      if (slots_[i].hash == h && slots_[i].rec->info.name == name) break;
    }
    slots_[i] = Slot{};
    size_--;
    // Backward-shift deletion: move later entries of the run into the hole when their
    // home does not lie (cyclically) between the hole and them.
    for (size_t j = (i + 1) & mask(); slots_[j].rec != nullptr; j = (j + 1) & mask()) {
      const size_t k = slots_[j].hash & mask();
      const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      slots_[j] = Slot{};
      i = j;
    }
  }
  void reserve(size_t n) {
    size_t cap = 16;
    while (3 * cap < 4 * n) cap *= 2;
    if (cap > slots_.size()) grow(cap);
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    Rec* rec = nullptr;
    size_t hash = 0;
  };
  static size_t hash(std::string_view name) { return std::hash<std::string_view>{}(name); }
  size_t mask() const { return slots_.size() - 1; }
  void place(const Slot& s) {
    size_t i = s.hash & mask();
    while (slots_[i].rec != nullptr) i = (i + 1) & mask();
    slots_[i] = s;
  }
  void grow(size_t cap) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    for (const Slot& s : old)
      if (s.rec != nullptr) place(s);
  }

  std::vector<Slot> slots_;  // size is a power of two (or 0)
  size_t size_ = 0;
};

// The core's timers: a binary heap ordered by (deadline, creation order), so equal
// deadlines fire in creation order. Cancelling frees the timer's slot; its heap entry stays
// behind as a tombstone and is dropped when it reaches the top (the top is always live, so
// next() is exact). One vector instead of two tree maps: no allocation per timer once warm,
// and few cache lines touched per tick (a simulator drives 10^4 cores, each cold).
class TimerHeap {
 public:
  using Fn = std::function<void(Instant)>;

  // A handle: slot << 40 | sequence number (never 0). A lax timer is a periodic tick whose
  // phase is arbitrary (see Core::poll_exact_timeout); it is kept in a heap of its own, so
  // that the earliest exact deadline is at hand too. Timers fire in (deadline, creation)
  // order across both heaps.
  uint64_t add(Instant at, Fn fn, bool lax = false) {
    uint32_t slot;
    if (free_ != kNone) {
      slot = free_;
      free_ = static_cast<uint32_t>(slots_[slot] & ~kFree);
    } else {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.push_back(0);
    }
    const uint64_t seq = ++seq_;
    slots_[slot] = seq;
    auto& heap = heaps_[lax ? 1 : 0];
    heap.push_back(Entry{at, seq, slot, std::move(fn)});
    std::push_heap(heap.begin(), heap.end(), Later{});
    return (static_cast<uint64_t>(slot) << 40) | seq;
  }
  // No-op for a handle that already fired or was cancelled.
  void cancel(uint64_t handle) {
    const uint64_t slot = handle >> 40, seq = handle & ((uint64_t{1} << 40) - 1);
    if (slot >= slots_.size() || slots_[slot] != seq) return;
    release(static_cast<uint32_t>(slot));
    for (auto& heap : heaps_) purge(heap);
  }
  std::optional<Instant> next() const {
    int h = earliest();
    if (h < 0) return std::nullopt;
    return heaps_[h].front().at;
  }
  std::optional<Instant> next_exact() const {
    if (heaps_[0].empty()) return std::nullopt;
    return heaps_[0].front().at;
  }
  // Takes the earliest timer if it is due at `now`.
  bool pop_due(Instant now, Fn& fn) {
    int h = earliest();
    if (h < 0 || heaps_[h].front().at > now) return false;
    auto& heap = heaps_[h];
    std::pop_heap(heap.begin(), heap.end(), Later{});
    fn = std::move(heap.back().fn);
    release(heap.back().slot);
    heap.pop_back();
    purge(heap);  // the other heap's front is untouched, and live
    return true;
  }

 private:
  struct Entry {
    Instant at;
    uint64_t seq;
    uint32_t slot;
    Fn fn;
  };
  // std heaps are max-heaps: the earliest (at, seq) must compare greatest. A function
  // object, so that the heap code inlines it.
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
  };
  // The heap whose front is the earliest timer, or -1 if both are empty.
  int earliest() const {
    int best = -1;
    for (int h = 0; h < 2; ++h)
      if (!heaps_[h].empty() && (best < 0 || Later{}(heaps_[best].front(), heaps_[h].front()))) best = h;
    return best;
  }
  bool live(const Entry& e) const { return slots_[e.slot] == e.seq; }
  void release(uint32_t slot) {
    slots_[slot] = kFree | free_;
    free_ = slot;
  }
  void purge(std::vector<Entry>& heap) {
    while (!heap.empty() && !live(heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), Later{});
      heap.pop_back();
    }
  }

  // A free slot holds kFree | the next free slot (a free list threaded through slots_,
  // so a tick touches one array less); sequence numbers stay below 2^40.
  static constexpr uint64_t kFree = uint64_t{1} << 63;
  static constexpr uint32_t kNone = UINT32_MAX;

  std::array<std::vector<Entry>, 2> heaps_;  // exact, lax
  std::vector<uint64_t> slots_;  // sequence number of the live timer in each slot
  uint32_t free_ = kNone;        // first free slot
  uint64_t seq_ = 0;
};

struct OriginSeen {
  static constexpr size_t kMaxEpochs = 4;
  std::deque<SeenEpoch> epochs;  // most recently used first
  Instant last{};
};

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
  struct AckHandler {
    std::variant<ProbeAck, RelayAck, PingAck> kind;
    uint64_t timer = 0;
  };

  struct PendingStream {
    enum Kind { PushPullReq, TcpPing, UserMsgReq } kind;
    bool join = false;
    uint32_t seq = 0;
    Address to;
    Instant started{};
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
  std::map<std::string, OriginSeen> seen;

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

  // Malformed or unexpected input: counted in total and by reason.
  void bad(const char* reason) {
    st.bad_messages++;
    metrics.incr("memberlist.bad_messages", 1, {{"reason", reason}});
  }

  void apply_awareness(int delta) {
    if (awareness.apply_delta(delta)) {
      log(LogLevel::Debug, "Health score " + std::to_string(awareness.score()));
      metrics.set_gauge("memberlist.health.score", awareness.score());
    }
  }

  void sample_node_instances() {
    for (NodeState st_ : {NodeState::Alive, NodeState::Suspect, NodeState::Dead, NodeState::Left})
      metrics.set_gauge("memberlist.node.instances", static_cast<double>(by_state[static_cast<size_t>(st_)]),
                        {{"node_state", to_string(st_)}});
  }

  void queue_check_tick(Instant now) {
    metrics.set_gauge("memberlist.queue.broadcasts", static_cast<double>(queue.size()));
    metrics.set_gauge("memberlist.queue.user_broadcasts", static_cast<double>(user_queue.size()));
    sample_node_instances();
    schedule_lax(now + cfg.queue_check_interval, [this](Instant t) { queue_check_tick(t); });
  }

  // The most a broadcast may take so that gossip can carry it in one datagram.
  size_t max_broadcast_size() const {
    const size_t over = codec->pack_header_overhead() + codec->pack_part_overhead();
    return cfg.udp_buffer_size > over ? cfg.udp_buffer_size - over : 0;
  }

  // Metadata must respect meta_max_size, and our alive message must fit a gossip datagram.
  Status check_meta(const Bytes& meta) const {
    if (meta.size() > cfg.meta_max_size)
      return Status::error(Errc::too_large, "node metadata is " + std::to_string(meta.size()) +
                                                " bytes, the limit (meta_max_size) is " +
                                                std::to_string(cfg.meta_max_size));
    const size_t enc = codec->encode(Alive{incarnation + 1, cfg.name, cfg.advertise, meta, cfg.vsn()}).size();
    if (enc > max_broadcast_size())
      return Status::error(Errc::too_large, "node metadata of " + std::to_string(meta.size()) +
                                                " bytes makes an alive message of " + std::to_string(enc) +
                                                " bytes, more than a datagram of udp_buffer_size (" +
                                                std::to_string(cfg.udp_buffer_size) + ") can carry");
    return Status::success();
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
    return timers.add(at, std::move(fn));
  }
  // A periodic tick whose phase is arbitrary (probe, push/pull, queue check): a runtime
  // may run it a little late (Core::poll_exact_timeout).
  uint64_t schedule_lax(Instant at, std::function<void(Instant)> fn) {
    return timers.add(at, std::move(fn), true);
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

  // Membership news first, then application broadcasts, then the delegate's pull-style
  // messages (each wrapped as a UserMsg), as long as they fit `limit`.
  std::vector<Bytes> get_broadcasts(size_t overhead, size_t limit) {
    std::vector<Bytes> out;
    size_t used = 0;
    auto take = [&](TransmitLimitedQueue& q, size_t room) {
      for (Bytes& b : q.get_broadcasts(overhead, room, est_num_nodes())) {
        used += overhead + b.size();
        out.push_back(std::move(b));
      }
    };
    // The reference fills the datagram with membership news first, so application broadcasts
    // wait behind a join's alive messages (seconds at 128 nodes). While both queues hold
    // something, the application's may take up to half the room first; membership news keeps
    // at least half. Each queue is asked once per datagram, so nothing is sent twice.
    if (user_queue.size() > 0 && queue.size() > 0) {
      take(user_queue, limit / 2);
      take(queue, limit - used);
    } else {
      take(queue, limit);
      if (used < limit) take(user_queue, limit - used);
    }
    if (delegate && used < limit && limit - used > overhead + user_msg_overhead) {
      const size_t room = limit - used;
      std::vector<Bytes> msgs = hook([&](Delegate& d) { return d.get_broadcasts(overhead + user_msg_overhead, room); });
      for (Bytes& m : msgs) {
        if (m.empty()) continue;
        Bytes enc = codec->encode(UserMsg{std::move(m)});
        if (used + overhead + enc.size() > limit) {
          bad("delegate_broadcast_too_large");
          continue;
        }
        used += overhead + enc.size();
        out.push_back(std::move(enc));
      }
    }
    return out;
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

  void broadcast(const std::string& node, const Message& m, TransmitLimitedQueue::Done done = {}) {
    queue.queue_named(node, codec->encode(m), std::move(done));
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
    node_map.insert(rec.get());
    if (rec->info.name == cfg.name) me = rec.get();
    by_state[static_cast<size_t>(rec->info.state)]++;
    const bool mine = rec.get() == me;
    nodes.push_back(std::move(rec));
    std::swap(nodes[offset], nodes[n]);
    if (mine)
      self_pos = offset;
    else if (self_pos == offset)
      self_pos = n;
  }

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

  void refute(NodeRec& me, uint32_t accused) {
    uint32_t inc = ++incarnation;
    if (accused >= inc) inc = incarnation = accused + 1;
    me.info.incarnation = inc;
    apply_awareness(1);
    st.refutes++;
    broadcast(cfg.name, self_alive());
  }

  // `done` (local bootstrap/updates only) follows the alive broadcast we queue.
  void alive_node(const Alive& a, bool bootstrap, Instant now, TransmitLimitedQueue::Done done = {}) {
    if (left && a.node == cfg.name) return;
    if (a.vsn.pmin == 0 || a.vsn.pmax == 0 || a.vsn.pmin > a.vsn.pmax) {
      log(LogLevel::Warn, "Ignoring an alive message for '" + a.node + "' (" + a.addr.to_string() +
                              ") because protocol version(s) are wrong: " + std::to_string(a.vsn.pmin) +
                              " <= " + std::to_string(a.vsn.pcur) + " <= " + std::to_string(a.vsn.pmax) +
                              " should be >0");
      bad("bad_vsn");
      return;
    }
    if (a.node.empty() && !bootstrap) {
      bad("empty_name");
      return;
    }
    NodeRec* r = find(a.node);
    const bool local = a.node == cfg.name;
    // The alive hook sees every message about another node that would change something.
    if (!local && delegate &&
        (r == nullptr || a.incarnation > r->info.incarnation || r->info.addr != a.addr)) {
      Status verdict = hook([&](Delegate& d) { return d.notify_alive(info_of(a)); });
      if (!verdict.ok()) {
        log(LogLevel::Debug, "Ignoring an alive message for '" + a.node + "' (" + a.addr.to_string() +
                                 "): rejected by the delegate: " + verdict.message);
        metrics.incr("memberlist.alive.rejected");
        return;
      }
      r = find(a.node);
    }
    // The allow-list, for a new node or a new address of a known one (as the reference).
    if (!local && (r == nullptr || r->info.addr != a.addr) && cfg.address_allowed && !cfg.address_allowed(a.addr)) {
      log(LogLevel::Warn, "Rejected node " + a.node + " (" + a.addr.to_string() + "): address not allowed");
      metrics.incr("memberlist.node.rejected");
      return;
    }
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
        notifications.push_back(Conflict{r->info, info_of(a)});
        return;
      }
    }

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
      broadcast(a.node, a, std::move(done));
      r->info.vsn = a.vsn;
      r->info.incarnation = a.incarnation;
      r->info.meta = a.meta;
      r->info.addr = a.addr;
      if (r->info.state != NodeState::Alive) {
        set_state(*r, NodeState::Alive);
        r->state_change = now;
      }
    }
    metrics.incr("memberlist.msg.alive");

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
    metrics.incr("memberlist.msg.suspect");
    r->info.incarnation = s.incarnation;
    set_state(*r, NodeState::Suspect);
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
    r->suspicion = std::make_unique<Suspicion>(std::move(sus));
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
    if (k > 0 && n < k) {
      st.degraded_timeouts++;
      metrics.incr("memberlist.degraded.timeout");
    }
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
      broadcast(d.node, d, [this](FinishReason) { leave_done = true; });
    } else {
      broadcast(d.node, d);
    }
    r->info.incarnation = d.incarnation;
    set_state(*r, d.node == d.from ? NodeState::Left : NodeState::Dead);
    r->state_change = now;
    metrics.incr("memberlist.msg.dead");
    emit(EventType::Leave, r->info);
  }

  // ---- probing (§3.3) -----------------------------------------------------------------
  void probe_tick(Instant deadline, Instant now) {
    // Like the reference's ticker channel, which buffers one tick: a tick that arrives while
    // a probe runs starts the next probe as soon as that one ends; further ones are dropped.
    if (probe)
      probe_tick_pending = true;
    else
      run_probe(now);
    Instant next = deadline + cfg.probe_interval;
    while (next <= now) next += cfg.probe_interval;
    schedule_lax(next, [this, next](Instant t) { probe_tick(next, t); });
  }

  // Reaps Dead and Left nodes older than gossip_to_the_dead_time, then reshuffles.
  void reset_nodes(Instant now) {
    std::vector<std::unique_ptr<NodeRec>> keep;
    for (auto& n : nodes) {
      bool reap = !is_self(*n) && dead_or_left(n->info.state) &&
                  now - n->state_change > cfg.gossip_to_the_dead_time;
      if (reap) {
        clear_suspicion(*n);
        node_map.erase(n->info.name);
        by_state[static_cast<size_t>(n->info.state)]--;
      } else {
        keep.push_back(std::move(n));
      }
    }
    nodes = std::move(keep);
    shuffle(nodes);
    self_pos = static_cast<size_t>(std::find_if(nodes.begin(), nodes.end(), [&](const auto& p) { return is_self(*p); }) -
                                   nodes.begin());
    // Forget which broadcasts of an origin we have seen once it has been gone (reaped, or
    // never known) for gossip_to_the_dead_time since its last broadcast reached us: every
    // node retransmits a broadcast a few times right after it first gets it, so no copy
    // can still be travelling by then.
    for (auto it = seen.begin(); it != seen.end();) {
      if (find(it->first) == nullptr && now - it->second.last > cfg.gossip_to_the_dead_time)
        it = seen.erase(it);
      else
        ++it;
    }
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
      if (is_self(r) || dead_or_left(r.info.state)) {
        checked++;
        continue;
      }
      probe_node(r.info, now);
      return;
    }
  }

  // A ping carries what its receiver uses: the target's name (a restarted node under a new
  // name must not answer) and where to reply when that is not the packet's source. Our
  // name (the reference's SourceNode, for its name-aware transports) is left out: no
  // receiver of ours reads it, and it is a third of a probe's bytes.
  Ping make_ping(uint32_t seq, const std::string& target) const {
    return Ping{seq, target, cfg.advertise_is_source ? Address{} : cfg.advertise, {}};
  }

  void probe_node(const NodeInfo& node, Instant now) {
    st.probes++;
    Probe p;
    p.interval = awareness.scale_timeout(cfg.probe_interval);
    if (p.interval > cfg.probe_interval) {
      st.degraded_probes++;
      metrics.incr("memberlist.degraded.probe");
    }
    p.seq = ++seq_no;
    p.node = node;
    p.sent = now;
    Ping ping = make_ping(p.seq, node.name);
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
      return is_self(r) || r.info.state != NodeState::Alive || r.info.name == target;
    });
    std::vector<std::pair<Address, bool>> to;  // copied: sending may run delegate hooks
    for (const NodeRec* h : helpers) to.emplace_back(h->info.addr, h->info.vsn.pmax >= 4);
    for (const auto& [addr, nack] : to) {
      // Only helpers speaking protocol 4 send nacks.
      if (nack) p.expected_nacks++;
      send_with_piggyback(addr, IndirectPing{p.seq, p.node.addr, target, nack, cfg.advertise, cfg.name});
    }
    bool tcp_disabled = cfg.disable_tcp_pings ||
                        (cfg.disable_tcp_pings_for_node && cfg.disable_tcp_pings_for_node(target));
    if (!tcp_disabled && p.node.vsn.pmax >= 3) {
      StreamRequest req;
      req.id = ++next_stream_id;
      req.to = p.node.addr;
      req.payload = codec->encode(make_ping(p.seq, target));
      req.expect_reply = true;
      req.deadline = p.sent + p.interval;
      streams[req.id] = PendingStream{PendingStream::TcpPing, false, p.seq, p.node.addr, now};
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

  void end_probe(int awareness_delta, Instant now) {
    Probe& p = *probe;
    cancel(p.direct_timer);
    cancel(p.reap_timer);
    cancel(p.tcp_wait_timer);
    ack_handlers.erase(p.seq);
    metrics.observe_ms(probe_timer, ms(now - p.sent));
    probe.reset();
    apply_awareness(awareness_delta);
    if (probe_tick_pending) {
      probe_tick_pending = false;
      run_probe(now);
    }
  }

  void probe_failed(Instant now) {
    Probe& p = *probe;
    if (p.tcp_ok) {
      log(LogLevel::Warn, "Was able to connect to " + p.node.name +
                              " over TCP but UDP probes failed, network may be misconfigured");
      end_probe(-1, now);
      return;
    }
    // With nack-capable helpers, missing nacks blame us; without, any failure does.
    int delta = p.expected_nacks > 0 ? std::max(0, p.expected_nacks - p.nacks) : 1;
    NodeInfo node = p.node;
    end_probe(delta, now);
    st.probe_failures++;
    log(LogLevel::Info, "Suspect " + node.name + " has failed, no acks received");
    suspect_node(Suspect{node.incarnation, node.name, cfg.name}, now);
  }

  // ---- acks, nacks, helper side (§3.4) ---------------------------------------------------
  void handle_ack(const Ack& a, Instant now) {
    auto it = ack_handlers.find(a.seq);
    if (it == ack_handlers.end()) {
      bad("unknown_ack");
      return;
    }
    AckHandler h = std::move(it->second);
    ack_handlers.erase(it);
    cancel(h.timer);
    if (std::holds_alternative<ProbeAck>(h.kind)) {
      if (probe && probe->seq == a.seq) {
        // Only acks of the direct phase report a round-trip time, and only to hosts with a
        // delegate (the reference's PingDelegate): drivers that never poll stay bounded.
        if (!probe->indirect_sent && delegate) notifications.push_back(PingComplete{probe->node, now - probe->sent, a.payload});
        end_probe(-1, now);
      }
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
    bad("unknown_nack");
  }

  void handle_ping(const Address& from, const Ping& p) {
    if (!p.node.empty() && p.node != cfg.name) {
      log(LogLevel::Warn, "Got ping for unexpected node '" + p.node + "' from=" + from.to_string());
      bad("wrong_node");
      return;
    }
    Ack ack{p.seq, {}};
    if (delegate) {
      ack.payload = hook([](Delegate& d) { return d.ack_payload(); });
      if (ack.payload.size() > max_broadcast_size()) {
        log(LogLevel::Warn, "Ack payload of " + std::to_string(ack.payload.size()) +
                                " bytes does not fit a datagram; sending the ack without it");
        ack.payload.clear();
      }
    }
    send_with_piggyback(p.source.empty() ? from : p.source, ack);
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
    send_with_piggyback(ind.target, make_ping(seq, ind.node));
  }

  // ---- gossip (§3.6) ------------------------------------------------------------------
  void gossip_tick(Instant deadline, Instant now) {
    gossip(now);
    gossip_grid = deadline;
    if (nothing_to_gossip()) {
      // Idle: no timer until news is queued (resume_gossip), so an idle node is not woken
      // every gossip interval for nothing.
      gossip_idle = true;
      return;
    }
    schedule_gossip(now);
  }

  bool nothing_to_gossip() const { return queue.size() == 0 && user_queue.size() == 0 && !delegate; }

  // The next tick on the original grid (gossip_grid + k * interval, the first after now), so
  // news waits for a tick exactly as it would have with the timer running.
  void schedule_gossip(Instant now) {
    Instant next = gossip_grid + cfg.gossip_interval;
    if (next <= now) next += ((now - next) / cfg.gossip_interval + 1) * cfg.gossip_interval;
    schedule(next, [this, next](Instant t) { gossip_tick(next, t); });
  }

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

  void gossip(Instant now) {
    // Rounds take no virtual time; the timer still counts them, as the reference's (idle
    // rounds, skipped, are not counted).
    metrics.observe_ms(gossip_timer, 0);
    // With every listed node Alive or Suspect only our own position is excluded, so the
    // targets are picked without touching any record (cold in a large simulation); the
    // draws are the same either way, so runs stay identical.
    const bool all_live = by_state[static_cast<size_t>(NodeState::Dead)] == 0 &&
                          by_state[static_cast<size_t>(NodeState::Left)] == 0;
    auto targets = k_random_positions(cfg.gossip_nodes, [&](size_t pos) {
      if (all_live || pos == self_pos) return pos == self_pos;
      const NodeRec& r = *nodes[pos];
      switch (r.info.state) {
        case NodeState::Alive:
        case NodeState::Suspect: return false;
        case NodeState::Dead: return now - r.state_change > cfg.gossip_to_the_dead_time;
        case NodeState::Left: return true;
      }
      return true;
    });
    // Nothing to piggyback (no queued news, no delegate to ask): nothing would be sent.
    if (queue.size() == 0 && user_queue.size() == 0 && !delegate) return;
    const size_t header = codec->pack_header_overhead();
    if (cfg.udp_buffer_size <= header) return;
    std::vector<Address> to;  // copied: get_broadcasts may run delegate hooks
    for (size_t pos : targets) to.push_back(nodes[pos]->info.addr);
    for (const Address& a : to) {
      auto msgs = get_broadcasts(codec->pack_part_overhead(), cfg.udp_buffer_size - header);
      if (msgs.empty()) return;
      send_parts(a, std::move(msgs));
    }
  }

  // ---- push/pull (§3.7) ---------------------------------------------------------------
  // As the reference's pushPullTrigger: after the start-up stagger the loop first waits a
  // full (scaled) interval, then exchanges once per interval.
  void push_pull_tick(Instant now, bool exchange) {
    if (exchange) push_pull_random(now);
    Instant next = now + push_pull_scale(cfg.push_pull_interval, est_num_nodes());
    schedule_lax(next, [this](Instant t) { push_pull_tick(t, true); });
  }

  // One periodic-style exchange with a random Alive member other than us, if any.
  void push_pull_random(Instant now) {
    auto peers = k_random_nodes(1, [&](const NodeRec& r) {
      return is_self(r) || r.info.state != NodeState::Alive;
    });
    if (!peers.empty()) {
      const Address to = peers[0]->info.addr;
      if (cfg.log) log(LogLevel::Debug, "Initiating push/pull sync with: " + peers[0]->info.name + " " + to.to_string());
      start_push_pull(to, false, now);
    }
  }

  // Post-join burst (Config::post_join_push_pulls): simultaneous joiners only learn the
  // members that reached the seed before them, and gossip (sent retransmit_limit times,
  // infect-and-die) leaves a residue of pairs that only anti-entropy repairs. A few early
  // exchanges with random members square the missing fraction each time. Restarted by
  // every successful join.
  void start_join_burst(Instant now) {
    for (uint64_t& id : burst_timers) cancel(id);
    burst_timers.clear();
    const Duration g = cfg.gossip_interval;
    if (cfg.post_join_push_pulls <= 0 || g <= Duration::zero() || cfg.push_pull_interval <= Duration::zero()) return;
    Duration at = 2 * g;
    for (int i = 0; i < cfg.post_join_push_pulls; ++i, at *= 2) {
      // Jitter of +-G/2 keeps simultaneous joiners from all pulling at the same instant.
      const Duration jitter = random_stagger(g) - g / 2;
      burst_timers.push_back(schedule(now + at + jitter, [this](Instant t) { push_pull_random(t); }));
    }
  }

  PushPull local_state(bool join) {
    PushPull pp;
    pp.join = join;
    for (const auto& n : nodes)
      pp.nodes.push_back(PushNodeState{n->info.name, n->info.addr, n->info.meta, n->info.incarnation,
                                       n->info.state, n->info.vsn});
    if (delegate) pp.user_state = hook([join](Delegate& d) { return d.local_state(join); });
    sample_node_instances();
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
    streams[id] = PendingStream{PendingStream::PushPullReq, join, 0, to, now};
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

  // What must agree before a push/pull is merged: protocol versions, and for joins the
  // merge hook. Nothing has changed yet when this fails.
  Status check_merge(const PushPull& pp, bool join) {
    if (pp.nodes.size() > cfg.max_push_nodes) {
      bad("push_pull_too_many_nodes");
      return Status::error(Errc::too_large, "push/pull carries " + std::to_string(pp.nodes.size()) +
                                                " nodes, over max_push_nodes (" + std::to_string(cfg.max_push_nodes) + ")");
    }
    if (Status s = verify_protocol(pp.nodes); !s.ok()) return s;
    if (join && delegate) {
      std::vector<NodeInfo> peers;
      peers.reserve(pp.nodes.size());
      for (const auto& n : pp.nodes) peers.push_back(info_of(n));
      Status verdict = hook([&](Delegate& d) { return d.notify_merge(peers); });
      if (!verdict.ok()) return Status::error(Errc::rejected, "merge rejected by the delegate: " + verdict.message);
    }
    return Status::success();
  }

  void apply_merge(const PushPull& pp, bool join, Instant now) {
    merge_state(pp.nodes, now);
    if (delegate && !pp.user_state.empty())
      hook([&](Delegate& d) { d.merge_remote_state(pp.user_state, join); });
  }

  // ---- application broadcasts ---------------------------------------------------------------
  SeenEpoch& seen_epoch(const std::string& origin, uint32_t epoch, Instant now) {
    OriginSeen& o = seen[origin];
    o.last = now;
    auto it = std::find_if(o.epochs.begin(), o.epochs.end(), [&](const SeenEpoch& e) { return e.epoch == epoch; });
    if (it == o.epochs.begin() && it != o.epochs.end()) return *it;
    SeenEpoch e;
    if (it != o.epochs.end()) {
      e = std::move(*it);
      o.epochs.erase(it);
    } else {
      e.epoch = epoch;
    }
    o.epochs.push_front(std::move(e));
    if (o.epochs.size() > OriginSeen::kMaxEpochs) o.epochs.pop_back();
    return o.epochs.front();
  }

  void handle_user_broadcast(const UserBroadcast& m, Instant now) {
    if (m.origin == cfg.name) return;  // our own, back from the cluster
    if (m.origin.empty() || m.seq == 0) {
      bad("bad_broadcast");
      return;
    }
    SeenEpoch& e = seen_epoch(m.origin, m.epoch, now);
    if (!e.first_time(m.seq)) return;
    if (!m.name.empty()) {
      auto [it, fresh] = e.latest_named.try_emplace(m.name, m.seq);
      if (!fresh) {
        if (it->second > m.seq) return;  // superseded by a newer one we already have
        it->second = m.seq;
      }
      if (e.latest_named.size() > SeenEpoch::kMaxNames) {
        auto victim = e.latest_named.begin();
        if (victim == it) ++victim;
        e.latest_named.erase(victim);
      }
    }
    notifications.push_back(BroadcastReceived{m.origin, m.name, m.payload});
    metrics.incr("memberlist.user.broadcasts.received");
    // Spread it further, like membership news.
    Bytes enc = codec->encode(m);
    if (enc.size() > max_broadcast_size()) {
      log(LogLevel::Debug, "Not forwarding a broadcast from " + m.origin + ": " + std::to_string(enc.size()) +
                               " bytes do not fit our datagrams");
      return;
    }
    if (m.name.empty())
      user_queue.queue_unique(std::move(enc));
    else
      user_queue.queue_named(broadcast_key(m.origin, m.name), std::move(enc));
  }

  void handle_user_msg(const Address& from, const UserMsg& m) {
    if (m.payload.empty()) return;
    metrics.incr("memberlist.user.messages.received");
    notifications.push_back(UserMessage{m.payload, from});
  }

  Status update_meta(Bytes meta, Instant now, uint64_t* token) {
    if (hook_depth > 0) return Status::error(Errc::state, "update_meta cannot be called from a delegate hook");
    if (left) return Status::error(Errc::state, "the local node has left");
    if (Status s = check_meta(meta); !s.ok()) return s;
    const uint64_t tok = ++next_token;
    if (token) *token = tok;
    // Nobody to tell: finished at once, as the reference's UpdateNode.
    if (any_alive_other()) pending_tokens.insert(tok);
    Alive a{++incarnation, cfg.name, cfg.advertise, std::move(meta), cfg.vsn()};
    alive_node(a, true, now, [this, tok](FinishReason) { pending_tokens.erase(tok); });
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
          else if constexpr (std::is_same_v<T, UserMsg>) handle_user_msg(from, msg);
          else if constexpr (std::is_same_v<T, UserBroadcast>) handle_user_broadcast(msg, now);
          else {
            log(LogLevel::Warn, "Unexpected message in a packet from=" + from.to_string());
            bad("unexpected_type");
          }
        },
        m);
  }
};

// ---- Core -------------------------------------------------------------------------------

Core::Core(Config config, std::shared_ptr<const Codec> codec, Instant now)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(codec))) {
  Impl& s = *impl_;
  // Metadata: the delegate's if it has some, else the config's; refused ones are reported
  // by start_status() and replaced by the config's (or nothing).
  Bytes meta = s.cfg.meta;
  if (s.delegate) {
    std::optional<Bytes> m = s.hook([&](Delegate& d) { return d.node_meta(s.cfg.meta_max_size); });
    if (m) meta = std::move(*m);
  }
  if (Status ms = s.check_meta(meta); !ms.ok()) {
    s.start_status = ms;
    s.log(LogLevel::Error, "Refusing the local node metadata: " + ms.message);
    meta = s.check_meta(s.cfg.meta).ok() ? s.cfg.meta : Bytes{};
  }
  // Broadcast ids of another run of the same node must not look like ours: the epoch mixes
  // the seed (random in production) with the start time.
  s.broadcast_epoch = static_cast<uint32_t>(splitmix64(s.cfg.seed ^ splitmix64(static_cast<uint64_t>(now.count()))));
  s.metrics.set_gauge("memberlist.health.score", 0);
  // Bootstrap: ourselves, Alive at incarnation 1, with a Join event and an alive broadcast.
  s.alive_node(Alive{++s.incarnation, s.cfg.name, s.cfg.advertise, std::move(meta), s.cfg.vsn()}, true, now);
  // Stagger the periodic tasks by a random fraction of their interval.
  if (s.cfg.probe_interval > Duration::zero()) {
    Instant first = now + s.random_stagger(s.cfg.probe_interval);
    s.schedule_lax(first, [&s, first](Instant t) { s.probe_tick(first, t); });
  }
  if (s.cfg.push_pull_interval > Duration::zero()) {
    Instant first = now + s.random_stagger(s.cfg.push_pull_interval);
    s.schedule_lax(first, [&s](Instant t) { s.push_pull_tick(t, false); });
  }
  if (s.cfg.gossip_interval > Duration::zero() && s.cfg.gossip_nodes > 0) {
    Instant first = now + s.random_stagger(s.cfg.gossip_interval);
    s.schedule(first, [&s, first](Instant t) { s.gossip_tick(first, t); });
  }
  if (s.cfg.queue_check_interval > Duration::zero())
    s.schedule_lax(now + s.cfg.queue_check_interval, [&s](Instant t) { s.queue_check_tick(t); });
}

Core::~Core() = default;

void Core::handle_packet(const Address& from, std::span<const uint8_t> data, Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  std::vector<Message> msgs;
  Status s = impl_->codec->decode(data, msgs);
  if (!s.ok()) {
    impl_->bad("decode");
    impl_->log(LogLevel::Error, "Failed to decode packet: " + s.message + " from=" + from.to_string());
  }
  for (const Message& m : msgs) impl_->handle_message(from, m, now);
}

std::optional<Bytes> Core::handle_stream(const Address& from, std::span<const uint8_t> data, Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  std::vector<Message> msgs;
  Status st = s.codec->decode(data, msgs);
  if (!st.ok() || msgs.size() != 1) {
    s.bad("stream_decode");
    std::string why = st.ok() ? "expected exactly one message" : st.message;
    s.log(LogLevel::Error, "Failed to receive stream: " + why + " from=" + from.to_string());
    return s.codec->encode(ErrResp{why});
  }
  const Message& m = msgs[0];
  if (const auto* ping = std::get_if<Ping>(&m)) {
    if (!ping->node.empty() && ping->node != s.cfg.name) {
      s.log(LogLevel::Warn, "Got ping for unexpected node " + ping->node + " from=" + from.to_string());
      s.bad("wrong_node");
      return std::nullopt;
    }
    return s.codec->encode(Ack{ping->seq, {}});
  }
  if (const auto* pp = std::get_if<PushPull>(&m)) {
    // A refused merge is answered with the reason instead of our state, so that the other
    // side merges nothing either.
    if (Status ms = s.check_merge(*pp, pp->join); !ms.ok()) {
      s.log(LogLevel::Error, "Failed push/pull merge: " + ms.message + " from=" + from.to_string());
      return s.codec->encode(ErrResp{ms.message});
    }
    // Reply with our state as it was (as the reference does), then merge theirs.
    Bytes reply = s.codec->encode(s.local_state(pp->join));
    s.apply_merge(*pp, pp->join, now);
    return reply;
  }
  if (const auto* um = std::get_if<UserMsg>(&m)) {
    if (um->payload.size() > s.cfg.max_user_msg_size) {
      s.bad("user_msg_too_large");
      s.log(LogLevel::Error, "User message of " + std::to_string(um->payload.size()) + " bytes is over max_user_msg_size (" +
                                 std::to_string(s.cfg.max_user_msg_size) + ") from=" + from.to_string());
      return std::nullopt;
    }
    s.handle_user_msg(from, *um);
    return std::nullopt;
  }
  s.bad("unexpected_type");
  s.log(LogLevel::Error, "Received invalid msg type on a stream from=" + from.to_string());
  return s.codec->encode(ErrResp{"unexpected message type on a stream"});
}

Status Core::handle_stream_response(uint64_t id, const Status& transport, std::span<const uint8_t> reply,
                                    Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  auto it = s.streams.find(id);
  if (it == s.streams.end()) {
    s.bad("unknown_stream");
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
        s.bad("bad_tcp_ack");
        result = Status::error(Errc::protocol, "unexpected reply to a TCP ping");
      } else if (ack->seq != ps.seq) {
        s.bad("bad_tcp_ack");
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

  if (ps.kind == Impl::PendingStream::UserMsgReq) {
    if (!transport.ok()) s.log(LogLevel::Error, "Failed to send a user message to " + ps.to.to_string() + ": " + transport.message);
    return transport;
  }

  // Push/pull.
  s.metrics.observe_ms("memberlist.pushPullNode", ms(now - ps.started));
  if (!transport.ok()) {
    s.log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + transport.message);
    return transport;
  }
  std::vector<Message> msgs;
  Status d = s.codec->decode(reply, msgs);
  if (!d.ok() || msgs.size() != 1) {
    s.bad("bad_push_pull_reply");
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
    s.bad("bad_push_pull_reply");
    Status e = Status::error(Errc::protocol, "push/pull reply is not a push/pull message");
    s.log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + e.message);
    return e;
  }
  Status ms = s.check_merge(*pp, ps.join);
  if (!ms.ok()) {
    s.log(LogLevel::Error, "Push/Pull with " + ps.to.to_string() + " failed: " + ms.message);
    return ms;
  }
  s.apply_merge(*pp, ps.join, now);
  if (ps.join) s.start_join_burst(now);
  return ms;
}

void Core::handle_timeout(Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  TimerHeap::Fn fn;
  while (s.timers.pop_due(now, fn)) fn(now);
}

uint64_t Core::join(const Address& to, Instant now) { return impl_->start_push_pull(to, true, now); }

Status Core::leave(Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  if (s.hook_depth > 0) return Status::error(Errc::state, "leave cannot be called from a delegate hook");
  if (s.left) return Status::success();
  s.left = true;
  // Node == From marks a graceful leave for everyone else.
  const Dead leave{s.self().info.incarnation, s.cfg.name, s.cfg.name};
  s.dead_node(leave, now);
  // Beyond the reference: the leave also goes once, directly, to every live member. Gossip
  // alone sends it retransmit_mult * log10(n) times in all (2 in a small Local cluster), and
  // a node that epidemic misses would take the leaver for failed (it waits for a probe to
  // fail and a suspicion to expire) or learn it at the next push/pull.
  const Bytes msg = s.codec->encode(leave);
  for (const auto& n : s.nodes)
    if (!s.is_self(*n) && !dead_or_left(n->info.state)) s.transmits.push_back({n->info.addr, msg});
  return Status::success();
}

bool Core::leave_propagated() const { return impl_->left && (impl_->leave_done || !impl_->any_alive_other()); }

bool Core::has_left() const { return impl_->left; }

size_t Core::seed_members(const std::vector<NodeInfo>& members, Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  size_t added = 0;
  s.nodes.reserve(s.nodes.size() + members.size());
  s.node_map.reserve(s.nodes.size() + members.size());
  for (const NodeInfo& m : members) {
    if (m.name.empty() || m.incarnation == 0 || s.find(m.name) != nullptr) continue;
    auto rec = std::make_unique<Impl::NodeRec>();
    rec->info = m;
    rec->info.state = NodeState::Alive;
    rec->state_change = now;
    s.insert_node(std::move(rec));
    added++;
  }
  s.queue.reset();
  return added;
}

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
  s.send_with_piggyback(addr, s.make_ping(seq, name));
  return id;
}

const Status& Core::start_status() const { return impl_->start_status; }

Status Core::update_meta(Bytes meta, Instant now, uint64_t* token) {
  Impl::ResumeGossip resume{*impl_, now};
  return impl_->update_meta(std::move(meta), now, token);
}

Status Core::update_node(Instant now, uint64_t* token) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  if (s.hook_depth > 0) return Status::error(Errc::state, "update_node cannot be called from a delegate hook");
  std::optional<Bytes> meta;
  if (s.delegate) meta = s.hook([&](Delegate& d) { return d.node_meta(s.cfg.meta_max_size); });
  return s.update_meta(meta ? std::move(*meta) : s.self().info.meta, now, token);
}

bool Core::broadcast_finished(uint64_t token) const {
  return token != 0 && token <= impl_->next_token && impl_->pending_tokens.count(token) == 0;
}

Status Core::send_best_effort(const Address& to, Bytes payload, Instant now) {
  Impl& s = *impl_;
  (void)now;
  const size_t n = payload.size();
  Bytes enc = s.codec->encode(UserMsg{std::move(payload)});
  if (enc.size() > s.cfg.max_best_effort_size)
    return Status::error(Errc::too_large, "user message of " + std::to_string(n) + " bytes encodes to " +
                                              std::to_string(enc.size()) + " bytes, over max_best_effort_size (" +
                                              std::to_string(s.cfg.max_best_effort_size) + "); use send_reliable");
  s.metrics.incr("memberlist.user.messages.sent");
  s.transmits.push_back({to, std::move(enc)});
  return Status::success();
}

uint64_t Core::send_reliable(const Address& to, Bytes payload, Instant now, Status& status) {
  Impl& s = *impl_;
  if (payload.size() > s.cfg.max_user_msg_size) {
    status = Status::error(Errc::too_large, "user message of " + std::to_string(payload.size()) +
                                                " bytes is over max_user_msg_size (" +
                                                std::to_string(s.cfg.max_user_msg_size) + ")");
    return 0;
  }
  StreamRequest req;
  req.id = ++s.next_stream_id;
  req.to = to;
  req.payload = s.codec->encode(UserMsg{std::move(payload)});
  req.expect_reply = false;
  req.deadline = now + s.cfg.tcp_timeout;
  s.streams[req.id] = Impl::PendingStream{Impl::PendingStream::UserMsgReq, false, 0, to, now};
  s.metrics.incr("memberlist.user.messages.sent");
  const uint64_t id = req.id;
  s.stream_requests.push_back(std::move(req));
  status = Status::success();
  return id;
}

namespace {
Status no_member(const std::string& node) {
  return Status::error(Errc::not_found, "no live member named '" + node + "'");
}
}  // namespace

Status Core::send_best_effort(const std::string& node, Bytes payload, Instant now) {
  const auto* r = impl_->find(node);
  if (r == nullptr || dead_or_left(r->info.state)) return no_member(node);
  return send_best_effort(r->info.addr, std::move(payload), now);
}

uint64_t Core::send_reliable(const std::string& node, Bytes payload, Instant now, Status& status) {
  const auto* r = impl_->find(node);
  if (r == nullptr || dead_or_left(r->info.state)) {
    status = no_member(node);
    return 0;
  }
  return send_reliable(r->info.addr, std::move(payload), now, status);
}

Status Core::queue_broadcast(std::string name, Bytes payload, uint64_t& id, Instant now) {
  Impl::ResumeGossip resume{*impl_, now};
  Impl& s = *impl_;
  if (name.size() > 255 || name.find('\0') != std::string::npos)
    return Status::error(Errc::invalid, "broadcast name must be at most 255 bytes without NUL");
  const size_t n = payload.size();
  UserBroadcast m{s.cfg.name, s.broadcast_epoch, s.broadcast_seq + 1, name, std::move(payload)};
  Bytes enc = s.codec->encode(m);
  if (enc.size() > s.max_broadcast_size())
    return Status::error(Errc::too_large, "broadcast of " + std::to_string(n) + " bytes encodes to " +
                                              std::to_string(enc.size()) + " bytes, more than one datagram carries (" +
                                              std::to_string(s.max_broadcast_size()) + " with udp_buffer_size " +
                                              std::to_string(s.cfg.udp_buffer_size) + "); use send_reliable for bulk data");
  s.broadcast_seq++;
  id = ++s.next_broadcast_id;
  auto done = [&s, bid = id](FinishReason r) { s.notifications.push_back(BroadcastDone{bid, outcome_of(r)}); };
  if (name.empty())
    s.user_queue.queue_unique(std::move(enc), std::move(done));
  else
    s.user_queue.queue_named(broadcast_key(s.cfg.name, name), std::move(enc), std::move(done));
  s.metrics.incr("memberlist.user.broadcasts.queued");
  return Status::success();
}

size_t Core::num_queued_broadcasts() const { return impl_->user_queue.size(); }
void Core::prune_broadcasts(size_t max_retain) { impl_->user_queue.prune(max_retain); }
void Core::reset_broadcasts() { impl_->user_queue.reset(); }

Metrics& Core::metrics() { return impl_->metrics; }
const Metrics& Core::metrics() const { return impl_->metrics; }

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
  out.alive = impl_->by_state[static_cast<size_t>(NodeState::Alive)];
  out.suspect = impl_->by_state[static_cast<size_t>(NodeState::Suspect)];
  out.dead = impl_->by_state[static_cast<size_t>(NodeState::Dead)];
  out.left = impl_->by_state[static_cast<size_t>(NodeState::Left)];
  out.broadcast_queue = impl_->queue.size();
  out.conflicts = impl_->conflicts;
  return out;
}

const Config& Core::config() const { return impl_->cfg; }

std::optional<Instant> Core::poll_exact_timeout() const {
  return impl_->timers.next_exact();
}

std::optional<Instant> Core::poll_timeout() const {
  return impl_->timers.next();
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
std::optional<Notification> Core::poll_notification() { return pop(impl_->notifications); }

}  // namespace memberlist::core
