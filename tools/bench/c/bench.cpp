// memberlist-bench: the benchmark scenarios of tools/bench run against libmemberlist through its
// public C header only. N nodes live in this one process on 127.0.0.1 (kernel-chosen ports),
// sharing one runtime. The scenarios, flags and JSON lines are those of ../go/main.go, so
// tools/bench/run.py can compare the two programs line by line.
#include <memberlist.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
    body_ += "\"" + std::string(key) + "\":" + v;
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

  explicit Tracker(int nodes) : n(nodes), known(nodes, std::vector<char>(nodes, 0)) {}

  double since() const { return std::chrono::duration<double>(Clock::now() - t0).count(); }

  void set(int obs, int member, bool on) {
    if (member < 0 || member >= n || known[obs][member] == on) return;
    known[obs][member] = on;
    total += on ? 1 : -1;
    double t = since();
    if (record) curve.emplace_back(t, total);
    if (total == int64_t(n) * n && full_at < 0) full_at = t;
  }
};

struct NodeCtx {
  Tracker* tr;
  int obs;
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
    // Any leave event about the watched node counts (the Go program cannot tell dead from
    // left); the state is kept to check it was the expected one.
    if (m == tr.watch && m >= 0 && tr.gone_at[ctx->obs] < 0) {
      tr.gone_at[ctx->obs] = tr.since();
      tr.gone_state[ctx->obs] = ml_node_state(node);
    }
  }
}

void on_log(void*, uint32_t, const char*, size_t) {}

// ---- user broadcasts -----------------------------------------------------------------------
// The C ABI has no user-broadcast API yet (a later issue adds one). The scenario is written
// against two hooks: when the API exists, define BENCH_HAVE_USER_BROADCAST, make
// queue_user_broadcast() queue bytes on one node, and have the library's delivery callback
// call deliver_user_broadcast(ctx, bytes): it records the first delivery and re-queues the
// message once, as the Go program (and Serf) do, so that it spreads epidemically.
#ifdef BENCH_HAVE_USER_BROADCAST
bool queue_user_broadcast(ml_memberlist* ml, const std::string& msg);

[[maybe_unused]] void deliver_user_broadcast(NodeCtx* ctx, ml_memberlist* self,
                                             const std::string& msg) {
  bool first = false;
  {
    std::lock_guard lock(ctx->tr->mu);
    if (!ctx->tr->bcast_at.empty() && ctx->tr->bcast_at[ctx->obs] < 0) {
      ctx->tr->bcast_at[ctx->obs] = ctx->tr->since();
      first = true;
    }
  }
  if (first) queue_user_broadcast(self, msg);
}
#endif

// ---- process measurements ------------------------------------------------------------------

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int64_t rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::optional<double> median(std::vector<double> xs) {
  if (xs.empty()) return std::nullopt;
  std::sort(xs.begin(), xs.end());
  size_t k = xs.size() / 2;
  return round3(xs.size() % 2 ? xs[k] : (xs[k - 1] + xs[k]) / 2);
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

struct Options {
  int n = 8;
  std::string preset = "local";
  std::string scenarios = "converge,broadcast,steady,detect,leave";
  double timeout = 120;
  double steady = 10;
  uint32_t retransmit_mult = 0;
  uint32_t threads = 2;
  int extra_pushpulls = 0;
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
    else if (a == "retransmit-mult") o.retransmit_mult = uint32_t(std::atoi(v.c_str()));
    else if (a == "threads") o.threads = uint32_t(std::atoi(v.c_str()));
    else if (a == "extra-pushpulls") o.extra_pushpulls = std::atoi(v.c_str());
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
  Options opt;
  if (!parse(argc, argv, opt)) {
    std::fprintf(stderr,
                 "usage: memberlist-bench [--n N] [--preset local|lan] [--scenarios a,b,..] "
                 "[--timeout S] [--steady S] [--threads T] [--retransmit-mult M] "
                 "[--extra-pushpulls K]\n");
    return 2;
  }
  const int N = opt.n;
  Output out{opt.preset, N};
  Tracker tr(N);
  const int64_t rss_base = rss_kib();

  ml_runtime* rt = nullptr;
  if (ml_runtime_new(opt.threads, &rt) != ML_OK) {
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
  for (int i = 0; i < N; ++i) {
    ml_config* cfg = nullptr;
    ml_status st = opt.preset == "lan" ? ml_config_new_lan(&cfg) : ml_config_new_local(&cfg);
    std::string name = "n" + std::to_string(i);
    if (st == ML_OK) st = ml_config_set_name(cfg, name.c_str());
    if (st == ML_OK) st = ml_config_set_bind_addr(cfg, "127.0.0.1");
    if (st == ML_OK) st = ml_config_set_bind_port(cfg, 0);
    if (st == ML_OK) st = ml_config_set_log_level(cfg, ML_LOG_OFF);
    if (st == ML_OK && opt.retransmit_mult) st = ml_config_set_retransmit_mult(cfg, opt.retransmit_mult);
    ctxs.push_back(std::make_unique<NodeCtx>(NodeCtx{&tr, i}));
    ml_callbacks cb{};
    cb.version = ML_CALLBACKS_VERSION;
    cb.user_data = ctxs.back().get();
    cb.on_event = on_event;
    cb.on_log = on_log;
    if (st == ML_OK) st = ml_memberlist_create(&nodes[i], rt, cfg, &cb);
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
                       .str("bytes_source", "libc send/sendto/sendmsg interposition (payload bytes)")
                       .integer("threads", opt.threads));

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
#ifdef BENCH_HAVE_USER_BROADCAST
      if (!converged) {
        out.result(sc, "skipped", Json().str("reason", "not converged"));
        continue;
      }
      const int origin = 1 % N;
      {
        std::lock_guard lock(tr.mu);
        tr.bcast_at.assign(N, -1);
        tr.t0 = Clock::now();
        tr.bcast_at[origin] = 0;
      }
      queue_user_broadcast(nodes[origin], "bench-broadcast-1");
      bool ok = wait_until(tr, opt.timeout, [&] {
        return std::all_of(tr.bcast_at.begin(), tr.bcast_at.end(), [](double t) { return t >= 0; });
      });
      std::vector<double> times;
      {
        std::lock_guard lock(tr.mu);
        for (int i = 0; i < N; ++i)
          if (i != origin && tr.bcast_at[i] >= 0) times.push_back(tr.bcast_at[i]);
      }
      Json j;
      j.integer("reached", int64_t(times.size()) + 1).opt("median", median(times));
      if (!times.empty()) j.num("max", round3(*std::max_element(times.begin(), times.end())));
      if (ok && !times.empty()) j.num("seconds", round3(*std::max_element(times.begin(), times.end())));
      out.result(sc, ok ? "ok" : "timeout", std::move(j));
#else
      out.result(sc, "n/a", Json().str("reason", "no user-broadcast API in the C ABI yet"));
#endif
    } else if (sc == "steady") {
      if (!converged) {
        out.result(sc, "skipped", Json().str("reason", "not converged"));
        continue;
      }
      double cpu0 = cpu_seconds();
      uint64_t b0 = wire_bytes_sent();
      auto t0 = Clock::now();
      std::this_thread::sleep_for(std::chrono::duration<double>(opt.steady));
      double cpu1 = cpu_seconds();
      uint64_t b1 = wire_bytes_sent();
      double el = std::chrono::duration<double>(Clock::now() - t0).count();
      int64_t rss = rss_kib();
      Json j;
      j.num("duration_s", round3(el))
          .num("cpu_s", round3(cpu1 - cpu0))
          .num("cpu_ms_per_node_s", round3((cpu1 - cpu0) * 1000 / el / N))
          .num("rss_kib_per_node", round3(double(rss - rss_base) / N))
          .integer("rss_kib", rss);
      if (wire_send_calls() > 0) {
        j.num("bytes_per_node_s", round3(double(b1 - b0) / el / N)).str("bytes_source", "libc");
      } else {
        j.raw("bytes_per_node_s", "null").str("bytes_source", "none (interposition inactive)");
      }
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
    } else {
      out.result(sc, "error", Json().str("error", "unknown scenario"));
    }
  }
  for (ml_memberlist* m : nodes) ml_memberlist_destroy(m);
  ml_runtime_free(rt);
  out.emit("done", Json());
  return 0;
}
