// memberlist-bench: the benchmark scenarios of tools/bench run against libmemberlist through its
// public C header only. N nodes live in this one process on 127.0.0.1 (kernel-chosen ports),
// sharing one runtime. The scenarios, flags and JSON lines are those of ../go/main.go, so
// tools/bench/run.py can compare the two programs line by line.
#include <memberlist.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <cstring>
#include <initializer_list>
#include <map>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "wire_count.h"

namespace {

using Clock = std::chrono::steady_clock;

double round3(double x) { return static_cast<double>(static_cast<int64_t>(x * 1000 + 0.5)) / 1000; }

// ---- JSON lines ----------------------------------------------------------------------------

class Json {
 public:
  Json& num(const char* key, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return raw(key, buf);
  }
  Json& integer(const char* key, int64_t v) { return raw(key, std::to_string(v)); }
  Json& str(const char* key, const std::string& v) {
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') q += '\\';
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
      q += c;
    }
    return raw(key, q + "\"");
  }
  Json& opt(const char* key, std::optional<double> v) {
    return v ? num(key, *v) : raw(key, "null");
  }
  Json& raw(const char* key, const std::string& v) {
    body_ += (body_.empty() ? "" : ",");
    body_ += '"';
    body_ += key;
    body_ += "\":";
    body_ += v;
    return *this;
  }
  std::string text() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

struct Output {
  std::string preset;
  int n = 0;
  void emit(const char* type, Json j) const {
    j.str("type", type).str("impl", "ours").str("preset", preset).integer("n", n);
    std::printf("%s\n", j.text().c_str());
    std::fflush(stdout);
  }
  void result(const std::string& scenario, const char* status, Json j = {}) const {
    j.str("scenario", scenario).str("status", status);
    emit("result", std::move(j));
  }
};

// ---- the tracker: who knows whom, and when -------------------------------------------------

struct Tracker {
  std::mutex mu;
  Clock::time_point t0 = Clock::now();
  int n = 0;
  std::vector<std::vector<char>> known;  // [observer][member]: seen alive and not since gone
  int64_t total = 0;
  std::vector<std::pair<double, int64_t>> curve;  // (time, total) after each change
  bool record = false;
  double full_at = -1;  // first time total == n*n
  int watch = -1;       // node whose leave/death is being timed
  std::vector<double> gone_at;
  std::vector<uint32_t> gone_state;
  std::vector<double> bcast_at;  // first delivery of the user broadcast per node
  // --broadcasts K > 1: [node][k] set when node got "bench-broadcast-<k+1>"; the time of the
  // last first-delivery of any of them
  std::vector<std::vector<char>> bcast_got;
  int64_t bcast_deliveries = 0;
  double bcast_last = 0;
  // soak: every leave event about anybody (no node stops during a soak, so each is false)
  bool count_gone = false;
  int64_t gone_events = 0, gone_dead = 0, gone_left = 0;
  std::vector<std::string> gone_log;  // the first few, "observer saw member state at t"
  bool holding = false;
  int64_t min_total_holding = 0;

  std::string gone_log_json() const {
    std::string j = "[";
    for (size_t k = 0; k < gone_log.size(); ++k) {
      j += k ? ",\"" : "\"";
      j += gone_log[k];
      j += '"';
    }
    return j + "]";
  }

  explicit Tracker(int nodes) : n(nodes), known(nodes, std::vector<char>(nodes, 0)) {}

  double since() const { return std::chrono::duration<double>(Clock::now() - t0).count(); }

  void set(int obs, int member, bool on) {
    if (member < 0 || member >= n || known[obs][member] == on) return;
    known[obs][member] = on;
    total += on ? 1 : -1;
    double t = since();
    if (record) curve.emplace_back(t, total);
    if (holding) min_total_holding = std::min(min_total_holding, total);
    if (total == int64_t(n) * n && full_at < 0) full_at = t;
  }
};

struct NodeCtx {
  Tracker* tr;
  int obs;
  std::atomic<ml_memberlist*> ml{nullptr};  // set once created (on_message_hashicorp forwards)
};

int node_index(const char* name) {
  if (name == nullptr || name[0] != 'n') return -1;
  char* end = nullptr;
  long v = std::strtol(name + 1, &end, 10);
  return (end && *end == '\0') ? static_cast<int>(v) : -1;
}

void on_event(void* user_data, uint32_t event, const ml_node* node) {
  auto* ctx = static_cast<NodeCtx*>(user_data);
  Tracker& tr = *ctx->tr;
  int m = node_index(ml_node_name(node));
  std::lock_guard lock(tr.mu);
  if (event == ML_EVENT_JOIN) {
    tr.set(ctx->obs, m, true);
  } else if (event == ML_EVENT_LEAVE) {
    tr.set(ctx->obs, m, false);
    if (tr.count_gone) {
      uint32_t state = ML_STATE_DEAD;
      (void)ml_node_get_state(node, &state);
      ++tr.gone_events;
      tr.gone_dead += state == ML_STATE_DEAD;
      tr.gone_left += state == ML_STATE_LEFT;
      if (tr.gone_log.size() < 20) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "n%d saw n%d %s at %.3f", ctx->obs, m,
                      state == ML_STATE_DEAD ? "dead" : state == ML_STATE_LEFT ? "left" : "gone", tr.since());
        tr.gone_log.emplace_back(buf);
      }
    }
    // Any leave event about the watched node counts (the Go program cannot tell dead from
    // left); the state is kept to check it was the expected one.
    if (m == tr.watch && m >= 0 && tr.gone_at[ctx->obs] < 0) {
      tr.gone_at[ctx->obs] = tr.since();
      (void)ml_node_get_state(node, &tr.gone_state[ctx->obs]);
    }
  }
}

// Warnings, counted by their text with digits removed (names, ports, counts), so that a soak
// can say which limit was hit. Only soaks turn logging on (at WARN).
std::mutex warn_mu;
std::map<std::string, int64_t> warnings;

// --log LEVEL: every line at that level and above also goes to stderr, with the node and the
// time since the scenario started (to see what the protocol did, e.g. during detect).
int log_to_stderr = ML_LOG_OFF;

void on_log(void* user_data, uint32_t level, const char* msg, size_t len) {
  if (static_cast<int>(level) >= log_to_stderr) {
    auto* ctx = static_cast<NodeCtx*>(user_data);
    double t;
    {
      std::lock_guard lock(ctx->tr->mu);
      t = ctx->tr->since();
    }
    std::fprintf(stderr, "%9.3f n%d %.*s\n", t, ctx->obs, static_cast<int>(len), msg);
  }
  if (level < ML_LOG_WARN) return;
  std::string key;
  for (size_t i = 0; i < len && key.size() < 60; ++i)
    if (!std::isdigit(static_cast<unsigned char>(msg[i]))) key += msg[i];
  std::lock_guard lock(warn_mu);
  ++warnings[key];
}

std::string warnings_json() {
  std::lock_guard lock(warn_mu);
  Json j;
  for (const auto& [text, count] : warnings) j.integer(text.c_str(), count);
  return j.text();
}

// ---- user broadcasts -----------------------------------------------------------------------
// ml_memberlist_queue_broadcast queues the message on its origin; every node that receives it
// for the first time delivers it once (on_broadcast) and forwards it itself, with the same
// retransmit limit as membership news (core: handle_user_broadcast). That is what the Go
// program builds by hand (a TransmitLimitedQueue per node, re-queued once on first delivery,
// as Serf does), so the bench only records deliveries and must not re-queue.
// Records the delivery of "bench-broadcast-<k>" at node obs; true if it is the node's first
// of that message. Caller holds tr.mu.
bool record_broadcast(Tracker& tr, int obs, const uint8_t* data, size_t len) {
  if (tr.bcast_at.empty()) return false;
  const std::string msg(reinterpret_cast<const char*>(data), len), prefix = "bench-broadcast-";
  const size_t k = msg.rfind(prefix, 0) == 0 ? size_t(std::atoll(msg.c_str() + prefix.size())) : 0;
  bool first = tr.bcast_at[obs] < 0;
  if (first) tr.bcast_at[obs] = tr.since();
  if (!tr.bcast_got.empty()) {
    if (k < 1 || k > tr.bcast_got[obs].size() || tr.bcast_got[obs][k - 1]) return false;
    tr.bcast_got[obs][k - 1] = 1;
    tr.bcast_deliveries++;
    tr.bcast_last = tr.since();
    first = true;
  }
  return first;
}

void on_broadcast(void* user_data, const char*, const char*, const uint8_t* data, size_t len) {
  auto* ctx = static_cast<NodeCtx*>(user_data);
  std::lock_guard lock(ctx->tr->mu);
  record_broadcast(*ctx->tr, ctx->obs, data, len);
}

// In hashicorp mode the library sends an application broadcast as a plain user message from
// its origin only (Go peers could not forward ours): it arrives at on_message, and the bench
// forwards it once on first delivery, exactly as the Go program does with its
// TransmitLimitedQueue.
void on_message_hashicorp(void* user_data, const uint8_t* data, size_t len) {
  auto* ctx = static_cast<NodeCtx*>(user_data);
  bool first = false;
  {
    std::lock_guard lock(ctx->tr->mu);
    first = record_broadcast(*ctx->tr, ctx->obs, data, len);
  }
  if (ml_memberlist* ml = ctx->ml.load(); first && ml) ml_memberlist_queue_broadcast(ml, nullptr, data, len, nullptr);
}

// ---- process measurements ------------------------------------------------------------------

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// A "Key:   123 kB" line of /proc/self/status: VmRSS (all resident pages) or RssAnon (the
// process's own memory, without the file-backed pages of program and library code).
int64_t status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t len = std::strlen(key);
  while (std::getline(f, line)) {
    if (line.compare(0, len, key) == 0) return std::strtoll(line.c_str() + len, nullptr, 10);
  }
  return -1;
}
int64_t rss_kib() { return status_kib("VmRSS:"); }
int64_t anon_kib() { return status_kib("RssAnon:"); }

std::optional<double> median(std::vector<double> xs) {
  if (xs.empty()) return std::nullopt;
  std::sort(xs.begin(), xs.end());
  size_t k = xs.size() / 2;
  return round3(xs.size() % 2 ? xs[k] : (xs[k - 1] + xs[k]) / 2);
}

// Sum over the running nodes of the metrics `names` (counters: totals since create).
double metric_sum(const std::vector<ml_memberlist*>& nodes, const std::vector<char>& alive,
                  std::initializer_list<const char*> names) {
  double sum = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    ml_metrics* m = nullptr;
    if (!alive[i] || ml_memberlist_metrics(nodes[i], &m) != ML_OK) continue;
    for (const char* name : names) {
      size_t k = ml_metrics_find(m, name, nullptr);
      if (k != SIZE_MAX) sum += ml_metrics_value(m, k);
    }
    ml_metrics_free(m);
  }
  return sum;
}

// Payload bytes sent (UDP datagrams + TCP stream bytes) as the library counts them.
double lib_bytes_sent(const std::vector<ml_memberlist*>& nodes, const std::vector<char>& alive) {
  return metric_sum(nodes, alive, {"memberlist.udp.sent", "memberlist.tcp.sent"});
}

// Many nodes need many descriptors (2 sockets per node plus streams): use the hard limit.
uint64_t raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

std::string curve_json(const std::vector<std::pair<double, int64_t>>& c, int n, size_t max_points) {
  size_t step = c.size() > max_points ? (c.size() + max_points - 1) / max_points : 1;
  std::ostringstream o;
  o << "[";
  auto point = [&](size_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "[%.3f,%.6g]", c[i].first, double(c[i].second) / (double(n) * n));
    return std::string(buf);
  };
  bool first = true;
  for (size_t i = 0; i < c.size(); i += step) {
    o << (first ? "" : ",") << point(i);
    first = false;
  }
  if (!c.empty() && (c.size() - 1) % step != 0) o << (first ? "" : ",") << point(c.size() - 1);
  o << "]";
  return o.str();
}

// Polls cond (under the tracker lock) every 5 ms until it holds or the time box ends.
bool wait_until(Tracker& tr, double timeout_s, const std::function<bool()>& cond) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    {
      std::lock_guard lock(tr.mu);
      if (cond()) return true;
    }
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Experiment: one state exchange with a random other member. Join runs exactly one push/pull
// per address.
void push_pull_random(ml_memberlist* ml, int self) {
  std::vector<std::string> peers;
  ml_node_list* list = nullptr;
  if (ml_memberlist_members(ml, &list) != ML_OK) return;
  for (size_t k = 0; k < ml_node_list_len(list); ++k) {
    const ml_node* p = ml_node_list_get(list, k);
    if (node_index(ml_node_name(p)) != self) peers.emplace_back(ml_node_address(p));
  }
  ml_node_list_free(list);
  if (peers.empty()) return;
  thread_local std::mt19937 rng(std::random_device{}());
  const char* addr = peers[rng() % peers.size()].c_str();
  ml_memberlist_join(ml, &addr, 1, nullptr);
}

// --transport host: the nodes' bytes go through the host transport (ml_transport) to a queue
// that one carrier thread empties into the receivers: what a host's transport adds to each
// datagram and stream message (a copy, a lock, a thread hop), against the library's sockets.
class HostCarrier {
 public:
  explicit HostCarrier(int n) : nodes_(size_t(n), nullptr), eps_(size_t(n)) {
    for (int i = 0; i < n; ++i) eps_[size_t(i)] = {this, i};
    thread_ = std::thread([this] { run(); });
  }
  ~HostCarrier() { stop(); }
  // Node i's address: 10.0.x.y:7946, distinct for up to 62500 nodes.
  static std::string address(int i) {
    return "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":7946";
  }
  ml_transport transport(int i) {
    ml_transport t{};
    t.version = ML_TRANSPORT_VERSION;
    t.user_data = &eps_[size_t(i)];
    t.send_packet = send_packet;
    t.send_stream = send_stream;
    t.stream_reply = stream_reply;
    return t;
  }
  void attach(int i, ml_memberlist* ml) {
    std::lock_guard l(mu_);
    nodes_[size_t(i)] = ml;
  }
  // Before the nodes are destroyed: nothing is delivered from then on.
  void stop() {
    {
      std::lock_guard l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  enum Kind { kPacket, kStream, kReply };
  struct Item {
    Kind kind;
    int from, to;
    uint64_t token;
    bool has_reply;
    std::vector<uint8_t> data;
  };
  struct Endpoint {
    HostCarrier* carrier;
    int index;
  };

  int index_of(const char* addr) const {
    unsigned a = 0, b = 0;
    if (std::sscanf(addr, "10.0.%u.%u:7946", &a, &b) != 2 || b == 0) return -1;
    const size_t i = a * 250 + b - 1;
    return i < nodes_.size() ? int(i) : -1;
  }
  bool push(Item it) {
    {
      std::lock_guard l(mu_);
      if (stopping_) return false;
      queue_.push_back(std::move(it));
    }
    cv_.notify_one();
    return true;
  }
  static int32_t send_packet(void* ud, const char* to, const uint8_t* data, size_t len) {
    auto* ep = static_cast<Endpoint*>(ud);
    const int t = ep->carrier->index_of(to);
    if (t < 0) return 0;  // nobody there: lost
    return ep->carrier->push({kPacket, ep->index, t, 0, false, {data, data + len}}) ? 0 : -1;
  }
  static int32_t send_stream(void* ud, const char* to, uint64_t token, const uint8_t* data, size_t len) {
    auto* ep = static_cast<Endpoint*>(ud);
    const int t = ep->carrier->index_of(to);
    if (t < 0) return -1;
    return ep->carrier->push({kStream, ep->index, t, token, false, {data, data + len}}) ? 0 : -1;
  }
  static void stream_reply(void* ud, uint64_t token, const uint8_t* reply, size_t len, uint32_t has_reply) {
    HostCarrier* c = static_cast<Endpoint*>(ud)->carrier;
    std::pair<int, uint64_t> dialer;
    {
      std::lock_guard l(c->mu_);
      auto it = c->inbound_.find(token);
      if (it == c->inbound_.end()) return;  // a refused stream, already failed
      dialer = it->second;
      c->inbound_.erase(it);
    }
    c->push({kReply, -1, dialer.first, dialer.second, has_reply != 0, {reply, reply + len}});
  }
  void run() {
    for (;;) {
      Item it;
      ml_memberlist *to = nullptr, *from = nullptr;
      uint64_t inbound = 0;
      {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        it = std::move(queue_.front());
        queue_.pop_front();
        to = nodes_[size_t(it.to)];
        if (it.from >= 0) from = nodes_[size_t(it.from)];
        if (it.kind == kStream) {
          inbound = next_inbound_++;
          inbound_[inbound] = {it.from, it.token};
        }
      }
      const std::string src = it.from >= 0 ? address(it.from) : std::string();
      if (it.kind == kPacket && to) {
        ml_memberlist_transport_packet(to, src.c_str(), it.data.data(), it.data.size());
      } else if (it.kind == kStream) {
        if (!to || ml_memberlist_transport_stream(to, src.c_str(), inbound, it.data.data(), it.data.size()) != ML_OK) {
          {
            std::lock_guard l(mu_);
            inbound_.erase(inbound);
          }
          if (from) ml_memberlist_transport_stream_done(from, it.token, ML_E_IO, nullptr, 0);
        }
      } else if (it.kind == kReply && to) {
        ml_memberlist_transport_stream_done(to, it.token, it.has_reply ? ML_OK : ML_E_REJECTED, it.data.data(),
                                            it.data.size());
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::vector<ml_memberlist*> nodes_;
  std::vector<Endpoint> eps_;
  std::map<uint64_t, std::pair<int, uint64_t>> inbound_;  // inbound token -> the dialer and its token
  uint64_t next_inbound_ = 1;
  std::thread thread_;
};

struct Options {
  int n = 8;
  std::string preset = "local";
  std::string scenarios = "converge,broadcast,steady,detect,leave";
  double timeout = 120;
  double steady = 10;
  double settle = 5;  // idle seconds before steady measures (join transients, e.g. the post-join burst)
  uint32_t retransmit_mult = 0;
  uint32_t threads = 2;
  int extra_pushpulls = 0;
  int broadcasts = 1;  // messages the broadcast scenario queues; > 1: counted misses after a push/pull interval
  double soak = 300;
  int log = ML_LOG_OFF;
  int soak_joiners = 16;
  double soak_join_rate = 10;  // joins started per second (a rollout); 0: as fast as the joiners go
  uint32_t wire = ML_WIRE_NATIVE;  // --wire native|hashicorp
  std::string transport = "sockets";  // --transport sockets|mem|host
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    while (!a.empty() && a[0] == '-') a.erase(0, 1);
    std::string v;
    if (auto eq = a.find('='); eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else {
      if (i + 1 >= argc) return false;
      v = argv[++i];
    }
    if (a == "n") o.n = std::atoi(v.c_str());
    else if (a == "preset") o.preset = v;
    else if (a == "scenarios") o.scenarios = v;
    else if (a == "timeout") o.timeout = std::atof(v.c_str());
    else if (a == "steady") o.steady = std::atof(v.c_str());
    else if (a == "settle") o.settle = std::atof(v.c_str());
    else if (a == "retransmit-mult") o.retransmit_mult = uint32_t(std::atoi(v.c_str()));
    else if (a == "threads") o.threads = uint32_t(std::atoi(v.c_str()));
    else if (a == "extra-pushpulls") o.extra_pushpulls = std::atoi(v.c_str());
    else if (a == "broadcasts") o.broadcasts = std::max(1, std::atoi(v.c_str()));
    else if (a == "log") o.log = v == "debug" ? ML_LOG_DEBUG : v == "info" ? ML_LOG_INFO : v == "warn" ? ML_LOG_WARN : ML_LOG_OFF;
    else if (a == "soak") o.soak = std::atof(v.c_str());
    else if (a == "soak-joiners") o.soak_joiners = std::max(1, std::atoi(v.c_str()));
    else if (a == "soak-join-rate") o.soak_join_rate = std::max(0.0, std::atof(v.c_str()));
    else if (a == "wire" && (v == "native" || v == "hashicorp")) o.wire = v == "native" ? ML_WIRE_NATIVE : ML_WIRE_HASHICORP;
    else if (a == "transport" && (v == "sockets" || v == "mem" || v == "host")) o.transport = v;
    else return false;
  }
  return o.n >= 2 && (o.preset == "local" || o.preset == "lan");
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const auto started = Clock::now();  // the nodes are created right after
  Options opt;
  if (!parse(argc, argv, opt)) {
    std::fprintf(stderr,
                 "usage: memberlist-bench [--n N] [--preset local|lan] [--scenarios a,b,..] "
                 "[--timeout S] [--steady S] [--settle S] [--threads T] [--retransmit-mult M] "
                 "[--extra-pushpulls K] [--broadcasts K] [--soak S] [--soak-joiners J] [--soak-join-rate R] [--wire native|hashicorp] [--transport sockets|mem|host] [--log debug|info|warn]\n");
    return 2;
  }
  const int N = opt.n;
  Output out{opt.preset, N};
  const uint64_t nofile = raise_nofile();
  log_to_stderr = opt.log;
  Tracker tr(N);
  const int64_t rss_base = rss_kib(), anon_base = anon_kib();

  ml_runtime* rt = nullptr;
  if (ml_runtime_create(&rt, opt.threads) != ML_OK) {
    out.result("setup", "error", Json().str("error", ml_last_error()));
    return 1;
  }
  uint32_t gossip_interval_ms = 0;
  {
    ml_config* cfg = nullptr;
    if (opt.preset == "lan" ? ml_config_new_lan(&cfg) : ml_config_new_local(&cfg)) return 1;
    gossip_interval_ms = ml_config_get_gossip_interval_ms(cfg);
    ml_config_free(cfg);
  }
  std::vector<std::unique_ptr<NodeCtx>> ctxs;
  std::vector<ml_memberlist*> nodes(N, nullptr);
  // --transport mem: one in-memory network (ml_network); host: the carrier above.
  ml_network* net = nullptr;
  if (opt.transport == "mem" && ml_network_create(&net) != ML_OK) return 1;
  std::unique_ptr<HostCarrier> carrier;
  if (opt.transport == "host") carrier = std::make_unique<HostCarrier>(N);
  for (int i = 0; i < N; ++i) {
    ml_config* cfg = nullptr;
    ml_status st = opt.preset == "lan" ? ml_config_new_lan(&cfg) : ml_config_new_local(&cfg);
    std::string name = "n";  // (appended: "n" + std::string trips GCC 12's -Wrestrict)
    name += std::to_string(i);
    if (st == ML_OK) st = ml_config_set_name(cfg, name.c_str());
    if (st == ML_OK) st = ml_config_set_bind_addr(cfg, "127.0.0.1");
    if (st == ML_OK) st = ml_config_set_bind_port(cfg, 0);
    if (st == ML_OK && net) st = ml_config_set_network(cfg, net, HostCarrier::address(i).c_str());
    if (st == ML_OK && carrier) {
      const ml_transport t = carrier->transport(i);
      st = ml_config_set_transport(cfg, &t, HostCarrier::address(i).c_str());
    }
    const bool soak = opt.scenarios.find("soak") != std::string::npos;
    const int level = std::min(opt.log, soak ? ML_LOG_WARN : ML_LOG_OFF);
    if (st == ML_OK) st = ml_config_set_log_level(cfg, static_cast<uint32_t>(level));
    if (st == ML_OK && opt.retransmit_mult) st = ml_config_set_retransmit_mult(cfg, opt.retransmit_mult);
    if (st == ML_OK) st = ml_config_set_wire_format(cfg, opt.wire);
    ctxs.push_back(std::make_unique<NodeCtx>());
    ctxs.back()->tr = &tr;
    ctxs.back()->obs = i;
    ml_callbacks cb{};
    cb.version = ML_CALLBACKS_VERSION;
    cb.user_data = ctxs.back().get();
    cb.on_event = on_event;
    cb.on_log = on_log;
    cb.on_broadcast = on_broadcast;
    if (opt.wire == ML_WIRE_HASHICORP) cb.on_message = on_message_hashicorp;
    if (st == ML_OK) st = ml_memberlist_create(&nodes[i], rt, cfg, &cb);
    if (st == ML_OK) ctxs.back()->ml = nodes[i];
    if (st == ML_OK && carrier) carrier->attach(i, nodes[i]);
    ml_config_free(cfg);
    if (st != ML_OK) {
      out.result("setup", "error", Json().str("error", ml_last_error()).integer("node", i));
      return 1;
    }
  }
  std::string seed;
  {
    ml_node* self = nullptr;
    if (ml_memberlist_local_node(nodes[0], &self) != ML_OK) {
      out.result("setup", "error", Json().str("error", ml_memberlist_last_error(nodes[0])));
      return 1;
    }
    seed = ml_node_address(self);
    ml_node_free(self);
  }
  out.emit("info", Json()
                       .str("version", std::string("libmemberlist ") + ml_version_string())
                       .str("bytes_source", "library metrics memberlist.udp.sent + memberlist.tcp.sent (payload bytes)")
                       .integer("nofile", int64_t(nofile))
                       .integer("threads", opt.threads)
                       .str("wire", opt.wire == ML_WIRE_NATIVE ? "native" : "hashicorp")
                       .str("transport", opt.transport));
  ml_network_destroy(net);  // the nodes hold it

  std::vector<char> alive(N, 1);  // nodes still running (not stopped, not left)
  bool converged = false;
  for (const std::string& sc : split(opt.scenarios)) {
    if (sc == "converge") {
      {
        std::lock_guard lock(tr.mu);
        tr.t0 = Clock::now();
        tr.record = true;
        tr.curve.emplace_back(0.0, tr.total);
      }
      std::atomic<int64_t> retries{0};
      std::vector<std::thread> joiners;
      for (int i = 1; i < N; ++i) {
        joiners.emplace_back([&, i] {
          const char* addr = seed.c_str();
          // Retry refused joins (a seed serves a bounded number of push/pulls at once).
          for (int attempt = 0; attempt < 50; ++attempt) {
            if (ml_memberlist_join(nodes[i], &addr, 1, nullptr) == ML_OK) {
              auto delay = std::chrono::milliseconds(2 * gossip_interval_ms);
              for (int k = 0; k < opt.extra_pushpulls; ++k) {
                std::this_thread::sleep_for(delay);
                delay *= 2;
                push_pull_random(nodes[i], i);
              }
              return;
            }
            ++retries;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        });
      }
      bool ok = wait_until(tr, opt.timeout, [&] { return tr.full_at >= 0; });
      for (auto& t : joiners) t.join();
      Json j;
      {
        std::lock_guard lock(tr.mu);
        tr.record = false;
        j.integer("join_retries", retries.load()).raw("curve", curve_json(tr.curve, N, 300));
        if (ok) j.num("seconds", round3(tr.full_at));
        else j.num("known_fraction", double(tr.total) / (double(N) * N));
        // The bench's own log must not count in the steady RSS.
        std::vector<std::pair<double, int64_t>>().swap(tr.curve);
      }
      converged = ok;
      out.result(sc, ok ? "ok" : "timeout", std::move(j));
    } else if (sc == "broadcast") {
      if (!converged) {
        out.result(sc, "skipped", Json().str("reason", "not converged"));
        continue;
      }
      const int origin = 1 % N;
      if (opt.broadcasts > 1) {
        // K messages queued at once on the origin; a miss is a (node, message) pair not
        // delivered one push/pull interval later (the preset's, unscaled below 33 nodes).
        // Queued once the cluster is two intervals old: the first periodic push/pull comes
        // a random stagger plus one interval after start, every interval after that.
        const int K = opt.broadcasts;
        const double window = opt.preset == "lan" ? 30 : 15;
        std::this_thread::sleep_until(started + std::chrono::duration<double>(2 * window));
        {
          std::lock_guard lock(tr.mu);
          tr.bcast_at.assign(N, -1);
          tr.bcast_got.assign(N, std::vector<char>(K, 0));
          tr.bcast_deliveries = 0;
          tr.t0 = Clock::now();
        }
        bool queued_all = true;
        for (int k = 1; k <= K && queued_all; ++k) {
          const std::string msg = "bench-broadcast-" + std::to_string(k);
          queued_all = ml_memberlist_queue_broadcast(nodes[origin], nullptr, reinterpret_cast<const uint8_t*>(msg.data()),
                                                     msg.size(), nullptr) == ML_OK;
        }
        if (!queued_all) {
          out.result(sc, "error", Json().str("error", ml_memberlist_last_error(nodes[origin])));
          continue;
        }
        const int64_t want = int64_t(N - 1) * K;
        auto deadline = tr.t0 + std::chrono::duration<double>(window);
        int64_t got = 0;
        double last = 0;
        while (true) {
          {
            std::lock_guard lock(tr.mu);
            got = 0;
            for (int i = 0; i < N; ++i)
              if (i != origin) got += std::count(tr.bcast_got[i].begin(), tr.bcast_got[i].end(), 1);
            last = tr.bcast_last;
          }
          if (got == want || Clock::now() >= deadline) break;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        {
          std::lock_guard lock(tr.mu);
          tr.bcast_got.clear();
          tr.bcast_at.clear();
        }
        Json j;
        j.integer("messages", K).integer("misses", want - got).num("window", window);
        if (got == want) j.num("max", round3(last)).num("seconds", round3(last));
        out.result(sc, got == want ? "ok" : "incomplete", std::move(j));
        continue;
      }
      {
        std::lock_guard lock(tr.mu);
        tr.bcast_at.assign(N, -1);
        tr.t0 = Clock::now();
        tr.bcast_at[origin] = 0;
      }
      const std::string msg = "bench-broadcast-1";
      if (ml_memberlist_queue_broadcast(nodes[origin], nullptr, reinterpret_cast<const uint8_t*>(msg.data()),
                                        msg.size(), nullptr) != ML_OK) {
        out.result(sc, "error", Json().str("error", ml_memberlist_last_error(nodes[origin])));
        continue;
      }
      // Done when every node has it, or when no queue holds it any more (as the Go program).
      const char* status = "timeout";
      auto deadline = Clock::now() + std::chrono::duration<double>(opt.timeout);
      Clock::time_point idle_since{};  // when every queue was first seen empty; {} = not now
      while (Clock::now() < deadline) {
        {
          std::lock_guard lock(tr.mu);
          if (std::all_of(tr.bcast_at.begin(), tr.bcast_at.end(), [](double t) { return t >= 0; })) {
            status = "ok";
            break;
          }
        }
        size_t queued = 0;
        for (int i = 0; i < N; ++i)
          if (size_t q = 0; alive[i] && ml_memberlist_get_num_queued_broadcasts(nodes[i], &q) == ML_OK) queued += q;
        if (queued > 0) {
          idle_since = {};
        } else if (idle_since == Clock::time_point{}) {
          idle_since = Clock::now();
        } else if (Clock::now() - idle_since > std::chrono::seconds(1)) {
          status = "incomplete";
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      std::vector<double> times;
      {
        std::lock_guard lock(tr.mu);
        for (int i = 0; i < N; ++i)
          if (i != origin && tr.bcast_at[i] >= 0) times.push_back(tr.bcast_at[i]);
      }
      Json j;
      j.integer("reached", int64_t(times.size()) + 1).opt("median", median(times));
      if (!times.empty()) {
        double mx = round3(*std::max_element(times.begin(), times.end()));
        j.num("max", mx);
        if (std::strcmp(status, "ok") == 0) j.num("seconds", mx);
      }
      out.result(sc, status, std::move(j));
    } else if (sc == "steady") {
      if (!converged) {
        out.result(sc, "skipped", Json().str("reason", "not converged"));
        continue;
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(opt.settle));
      double cpu0 = cpu_seconds();
      uint64_t c0 = wire_bytes_sent();
      double b0 = lib_bytes_sent(nodes, alive);
      auto t0 = Clock::now();
      std::this_thread::sleep_for(std::chrono::duration<double>(opt.steady));
      double cpu1 = cpu_seconds();
      double b1 = lib_bytes_sent(nodes, alive);
      uint64_t c1 = wire_bytes_sent();
      double el = std::chrono::duration<double>(Clock::now() - t0).count();
      int64_t rss = rss_kib(), anon = anon_kib();
      Json j;
      j.num("duration_s", round3(el))
          .num("cpu_s", round3(cpu1 - cpu0))
          .num("cpu_ms_per_node_s", round3((cpu1 - cpu0) * 1000 / el / N))
          .num("rss_kib_per_node", round3(double(rss - rss_base) / N))
          .integer("rss_kib", rss)
          .num("anon_kib_per_node", round3(double(anon - anon_base) / N))
          .num("bytes_per_node_s", round3((b1 - b0) / el / N))
          .str("bytes_source", "metrics");
      // Cross-check: the same bytes counted at the libc boundary.
      if (wire_send_calls() > 0) j.num("bytes_per_node_s_libc", round3(double(c1 - c0) / el / N));
      out.result(sc, "ok", std::move(j));
    } else if (sc == "detect" || sc == "leave") {
      if (!converged) {
        out.result(sc, "skipped", Json().str("reason", "not converged"));
        continue;
      }
      // detect stops the last running node; leave makes the one before it leave.
      int target = -1;
      for (int i = N - 1, skip = sc == "leave" ? 1 : 0; i >= 1; --i) {
        if (!alive[i]) continue;
        if (skip-- == 0) {
          target = i;
          break;
        }
      }
      if (target < 0) {
        out.result(sc, "skipped", Json().str("reason", "too few nodes"));
        continue;
      }
      {
        std::lock_guard lock(tr.mu);
        tr.watch = target;
        tr.gone_at.assign(N, -1);
        tr.gone_state.assign(N, 0);
        tr.t0 = Clock::now();
      }
      alive[target] = 0;
      std::thread leaver;
      std::atomic<ml_status> leave_status{ML_OK};
      std::atomic<double> leave_returned{-1};
      if (sc == "detect") {
        ml_memberlist_shutdown(nodes[target]);
      } else {
        leaver = std::thread([&, target] {
          auto start = Clock::now();
          leave_status = ml_memberlist_leave(nodes[target], uint32_t(opt.timeout * 1000));
          leave_returned = std::chrono::duration<double>(Clock::now() - start).count();
          ml_memberlist_shutdown(nodes[target]);
        });
      }
      bool ok = wait_until(tr, opt.timeout, [&] {
        for (int i = 0; i < N; ++i)
          if (alive[i] && tr.gone_at[i] < 0) return false;
        return true;
      });
      std::vector<double> times;
      int observers = 0, wrong_state = 0;
      int64_t by_state[4] = {0, 0, 0, 0};
      const uint32_t want = sc == "detect" ? ML_STATE_DEAD : ML_STATE_LEFT;
      {
        std::lock_guard lock(tr.mu);
        for (int i = 0; i < N; ++i) {
          if (!alive[i]) continue;
          ++observers;
          if (tr.gone_at[i] >= 0) {
            times.push_back(tr.gone_at[i]);
            if (tr.gone_state[i] != want) ++wrong_state;
            if (tr.gone_state[i] < 4) ++by_state[tr.gone_state[i]];
          }
        }
        tr.watch = -1;
      }
      Json j;
      j.integer("observers", observers)
          .integer("seen", int64_t(times.size()))
          .integer("wrong_state", wrong_state)
          .raw("states_seen", "{\"alive\":" + std::to_string(by_state[0]) + ",\"suspect\":" +
                                  std::to_string(by_state[1]) + ",\"dead\":" +
                                  std::to_string(by_state[2]) + ",\"left\":" +
                                  std::to_string(by_state[3]) + "}")
          .opt("median", median(times));
      if (!times.empty()) {
        double mx = round3(*std::max_element(times.begin(), times.end()));
        j.num("max", mx);
        if (ok) j.num("seconds", mx);
      }
      if (leaver.joinable()) {
        leaver.join();
        j.str("leave_status", ml_status_str(leave_status)).num("leave_returned_s", round3(leave_returned));
      }
      out.result(sc, ok ? "ok" : "timeout", std::move(j));
    } else if (sc == "soak") {
      // Join (unless an earlier scenario did), wait until every node sees N alive members,
      // then hold --soak seconds: any leave event meanwhile is a false failure.
      double cpu_start = cpu_seconds();
      int64_t retries = 0;
      double joins_done_s = 0;  // when the last join returned
      {
        std::lock_guard lock(tr.mu);
        tr.count_gone = true;
        if (!converged) tr.t0 = Clock::now();
      }
      if (!converged) {
        // A pool of joiners (each join is a push/pull of the whole state with n0), retrying
        // refused joins until the time box ends. Paced like a rollout: join i starts no
        // earlier than (i-1)/rate seconds in (--soak-join-rate; 0: unpaced).
        std::atomic<int> next{1};
        std::atomic<int64_t> refused{0};
        std::atomic<int64_t> joins_done_ns{0};
        auto start = Clock::now();
        auto deadline = start + std::chrono::duration<double>(opt.timeout);
        std::vector<std::thread> joiners;
        for (int w = 0; w < std::min(N - 1, opt.soak_joiners); ++w) {
          joiners.emplace_back([&] {
            const char* addr = seed.c_str();
            for (int i = next++; i < N; i = next++) {
              if (opt.soak_join_rate > 0) {
                std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                          std::chrono::duration<double>((i - 1) / opt.soak_join_rate)));
              }
              while (ml_memberlist_join(nodes[i], &addr, 1, nullptr) != ML_OK && Clock::now() < deadline) {
                ++refused;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
              }
              int64_t at = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
              for (int64_t cur = joins_done_ns.load(); cur < at && !joins_done_ns.compare_exchange_weak(cur, at);) {
              }
            }
          });
        }
        converged = wait_until(tr, opt.timeout, [&] { return tr.full_at >= 0; });
        for (auto& t : joiners) t.join();
        retries = refused.load();
        joins_done_s = double(joins_done_ns.load()) / 1e9;
      }
      Json j;
      double conv_cpu = cpu_seconds() - cpu_start;
      int64_t gone_converge = 0;
      {
        std::lock_guard lock(tr.mu);
        gone_converge = tr.gone_events;
        j.integer("join_retries", retries)
            .num("join_rate", opt.soak_join_rate)
            .num("joins_done_s", round3(joins_done_s))
            .num("converge_cpu_s", round3(conv_cpu));
        if (converged) j.num("converge_s", round3(tr.full_at));
        j.integer("false_failures_converge", gone_converge);
        j.num("known_fraction_converged", double(tr.total) / (double(N) * N));
      }
      if (!converged) {
        std::lock_guard lock(tr.mu);
        tr.count_gone = false;
        j.integer("gone_dead", tr.gone_dead)
            .integer("gone_left", tr.gone_left)
            .raw("gone_log", tr.gone_log_json())
            .num("suspicions_converge", metric_sum(nodes, alive, {"memberlist.msg.suspect"}))
            .raw("warnings", warnings_json());
        out.result(sc, "timeout", std::move(j));
        std::fflush(stdout);
        // Destroying thousands of overloaded nodes takes minutes: leave that to the OS.
        std::_Exit(0);
      }
      double susp0 = metric_sum(nodes, alive, {"memberlist.msg.suspect"});
      double udp_tx0 = metric_sum(nodes, alive, {"memberlist.udp.sent"});
      double udp_rx0 = metric_sum(nodes, alive, {"memberlist.udp.received"});
      double cpu0 = cpu_seconds();
      double b0 = lib_bytes_sent(nodes, alive);
      {
        std::lock_guard lock(tr.mu);
        tr.holding = true;
        tr.min_total_holding = tr.total;
      }
      auto t0 = Clock::now();
      auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.soak));
      auto next_note = t0 + std::chrono::seconds(30);
      while (Clock::now() < end) {
        std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(200), end - Clock::now()));
        if (Clock::now() >= next_note) {  // progress on stderr, for long runs
          next_note += std::chrono::seconds(30);
          std::lock_guard lock(tr.mu);
          std::fprintf(stderr, "soak n=%d t=%.0fs known=%.6f false_failures=%lld\n", N,
                       std::chrono::duration<double>(Clock::now() - t0).count(),
                       double(tr.total) / (double(N) * N), static_cast<long long>(tr.gone_events - gone_converge));
        }
      }
      double cpu1 = cpu_seconds();
      double b1 = lib_bytes_sent(nodes, alive);
      double susp1 = metric_sum(nodes, alive, {"memberlist.msg.suspect"});
      double udp_tx = metric_sum(nodes, alive, {"memberlist.udp.sent"}) - udp_tx0;
      double udp_rx = metric_sum(nodes, alive, {"memberlist.udp.received"}) - udp_rx0;
      double el = std::chrono::duration<double>(Clock::now() - t0).count();
      int64_t rss = rss_kib();
      int64_t false_failures = 0;
      bool still = false;
      {
        std::lock_guard lock(tr.mu);
        tr.holding = false;
        tr.count_gone = false;
        false_failures = tr.gone_events - gone_converge;
        still = tr.total == int64_t(N) * N;
        j.integer("false_failures", false_failures)
            .integer("gone_dead", tr.gone_dead)
            .integer("gone_left", tr.gone_left)
            .raw("gone_log", tr.gone_log_json())
            .num("min_known_fraction", double(tr.min_total_holding) / (double(N) * N))
            .raw("still_converged", still ? "true" : "false");
      }
      j.num("hold_s", round3(el))
          .num("suspicions", susp1 - susp0)
          .num("cpu_s", round3(cpu1 - cpu0))
          .num("cpu_cores", round3((cpu1 - cpu0) / el))
          .num("cpu_ms_per_node_s", round3((cpu1 - cpu0) * 1000 / el / N))
          .integer("rss_kib", rss)
          .num("rss_kib_per_node", round3(double(rss - rss_base) / N))
          .num("bytes_per_node_s", round3((b1 - b0) / el / N))
          // UDP bytes sent but never read by any node (kernel drops; loopback loses nothing
          // else), while holding.
          .num("udp_lost_fraction", udp_tx > 0 ? (udp_tx - udp_rx) / udp_tx : 0)
          .raw("warnings", warnings_json());
      out.result(sc, false_failures == 0 && gone_converge == 0 && still ? "ok" : "failed", std::move(j));
    } else {
      out.result(sc, "error", Json().str("error", "unknown scenario"));
    }
  }
  if (carrier) carrier->stop();  // before destroy: no more bytes handed to the nodes
  for (ml_memberlist* m : nodes) ml_memberlist_destroy(m);
  ml_runtime_free(rt);
  out.emit("done", Json());
  return 0;
}
