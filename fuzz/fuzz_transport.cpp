// libFuzzer target: a hostile host transport. Two memberlists carried by a host transport
// (ml_transport) join once; from then on the host records what they send, and each input is
// a list of operations on the injection calls (ml_memberlist_transport_packet, _stream,
// _stream_done): garbage, truncated, mutated or oversized datagrams and stream messages, bad
// source addresses, streams completed twice, with odd statuses, with unknown tokens, or never.
// What is left recorded at the end of an input is delivered unchanged, so the two stay a
// cluster that keeps talking. Checked: every call returns one of the statuses the header
// promises (and a message with it), a token completed once is not found the second time,
// the library answers each inbound stream at most once and only those handed to it, calls
// on a shut-down node return ML_E_CLOSED and on a node without a host transport ML_E_STATE,
// and the memory the library holds stays within a fixed budget (checked after each input,
// with time for its queues to drain).
#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/allocator_interface.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "memberlist.h"

namespace {

constexpr const char* kAddr[2] = {"127.0.0.1:7001", "127.0.0.1:7002"};
constexpr size_t kMaxRecorded = 256;          // per kind; beyond it datagrams are lost, streams refused
constexpr size_t kBudget = 64u << 20;         // bytes the library may hold beyond the baseline
constexpr uint64_t kInjected = 1ull << 40;    // tokens of streams the fuzzer hands in
constexpr uint64_t kRelayed = 1ull << 50;     // tokens of recorded streams delivered to the peer

[[noreturn]] void fail(const char* what, long value) {
  std::fprintf(stderr, "fuzz_transport: %s (%ld)\n", what, value);
  std::abort();
}

struct Packet {
  int from;
  std::vector<uint8_t> data;
};
struct Stream {
  int from;
  uint64_t token;  // the sender's
  std::vector<uint8_t> data;
};
// An inbound stream token we handed to a node: whom to answer (relayed) and what we expect.
struct Inbound {
  bool relayed = false;
  int dialer = -1;
  uint64_t dialer_token = 0;
  bool refused = false;  // transport_stream did not return ML_OK
  bool answered = false;
};

std::mutex mu;
bool auto_deliver = true;  // during set-up: deliver inside the callbacks
std::deque<Packet> packets;
std::deque<Stream> streams;
std::map<uint64_t, Inbound> inbound;
uint64_t next_injected = kInjected, next_relayed = kRelayed;
ml_memberlist* nodes[2];
int ids[2] = {0, 1};
ml_memberlist* closed_node;  // a host transport, shut down
ml_memberlist* net_node;     // on an ml_network: no host transport
size_t baseline;

int index_of(const char* to) {
  for (int i = 0; i < 2; ++i)
    if (std::strcmp(to, kAddr[i]) == 0) return i;
  return -1;
}

void check_error(ml_memberlist* ml, ml_status s) {
  const char* m = ml_memberlist_last_error(ml);
  if (s != ML_OK && (m == nullptr || *m == '\0')) fail("a failed call left no message", s);
}

// A stream transport_stream refused: answered without a reply, if at all (the answer may
// already have come, on a library thread).
void mark_refused(uint64_t t) {
  std::lock_guard<std::mutex> l(mu);
  auto it = inbound.find(t);
  if (it != inbound.end()) it->second.refused = true;
}

// Hands `data` to node `to` as an inbound stream from node `from` answering `token`.
void relay_stream(int from, int to, uint64_t token, const uint8_t* data, size_t len) {
  uint64_t t;
  {
    std::lock_guard<std::mutex> l(mu);
    t = next_relayed++;
    Inbound& in = inbound[t];
    in.relayed = true;
    in.dialer = from;
    in.dialer_token = token;
  }
  ml_status s = ml_memberlist_transport_stream(nodes[to], kAddr[from], t, data, len);
  if (s != ML_OK && s != ML_E_STATE) fail("transport_stream of a relayed stream", s);
  check_error(nodes[to], s);
  if (s != ML_OK) {
    mark_refused(t);
    ml_memberlist_transport_stream_done(nodes[from], token, ML_E_IO, nullptr, 0);
  }
}

int32_t send_packet(void* ud, const char* to, const uint8_t* data, size_t len) {
  const int from = *static_cast<int*>(ud), t = index_of(to);
  if (t < 0) return 0;  // nobody there: lost
  {
    std::lock_guard<std::mutex> l(mu);
    if (!auto_deliver) {
      if (packets.size() < kMaxRecorded) packets.push_back({from, std::vector<uint8_t>(data, data + len)});
      return 0;
    }
  }
  ml_memberlist_transport_packet(nodes[t], kAddr[from], data, len);
  return 0;
}

int32_t send_stream(void* ud, const char* to, uint64_t token, const uint8_t* data, size_t len) {
  const int from = *static_cast<int*>(ud), t = index_of(to);
  if (t < 0) return -1;
  {
    std::lock_guard<std::mutex> l(mu);
    if (!auto_deliver) {
      if (streams.size() >= kMaxRecorded) return -1;
      streams.push_back({from, token, std::vector<uint8_t>(data, data + len)});
      return 0;
    }
  }
  relay_stream(from, t, token, data, len);
  return 0;
}

void stream_reply(void*, uint64_t token, const uint8_t* reply, size_t len, uint32_t has_reply) {
  Inbound in;
  {
    std::lock_guard<std::mutex> l(mu);
    auto it = inbound.find(token);
    if (it == inbound.end()) fail("stream_reply for a token never handed in", static_cast<long>(token));
    if (it->second.answered) fail("stream_reply twice for one token", static_cast<long>(token));
    // A refused stream may be answered (without a reply) on its way out; never with one.
    if (it->second.refused && has_reply) fail("a reply to a refused stream", static_cast<long>(token));
    it->second.answered = true;
    in = it->second;
    inbound.erase(it);
  }
  if (in.relayed && !in.refused) {
    ml_status s = ml_memberlist_transport_stream_done(nodes[in.dialer], in.dialer_token,
                                                      has_reply ? ML_OK : ML_E_REJECTED, reply, len);
    if (s != ML_OK && s != ML_E_NOT_FOUND) fail("stream_done of a relayed reply", s);
  }
}

ml_config* config(int i, const char* name, const char* addr) {
  ml_config* cfg = nullptr;
  ml_transport t{};
  t.version = ML_TRANSPORT_VERSION;
  t.user_data = &ids[i];
  t.send_packet = send_packet;
  t.send_stream = send_stream;
  t.stream_reply = stream_reply;
  if (ml_config_new_local(&cfg) != ML_OK || ml_config_set_name(cfg, name) != ML_OK ||
      ml_config_set_transport(cfg, &t, addr) != ML_OK)
    fail("config", 0);
  ml_config_set_log_level(cfg, ML_LOG_OFF);
  ml_config_set_probe_interval_ms(cfg, 100);
  ml_config_set_probe_timeout_ms(cfg, 50);
  ml_config_set_gossip_interval_ms(cfg, 50);
  ml_config_set_push_pull_interval_ms(cfg, 500);
  ml_config_set_tcp_timeout_ms(cfg, 300);  // streams never completed time out soon
  ml_config_set_max_stream_size(cfg, 64u << 10);
  ml_config_set_handoff_queue_depth(cfg, 64);
  return cfg;
}

void set_up() {
  for (int i = 0; i < 2; ++i) {
    ml_config* cfg = config(i, i == 0 ? "a" : "b", kAddr[i]);
    if (ml_memberlist_create(&nodes[i], nullptr, cfg, nullptr) != ML_OK) fail("create", i);
    ml_config_free(cfg);
  }
  const char* seed = kAddr[0];
  uint32_t joined = 0;
  if (ml_memberlist_join(nodes[1], &seed, 1, &joined) != ML_OK || joined != 1) fail("join", 0);

  ml_config* cfg = config(0, "c", "127.0.0.1:7003");
  if (ml_memberlist_create(&closed_node, nullptr, cfg, nullptr) != ML_OK) fail("create c", 0);
  ml_config_free(cfg);
  ml_memberlist_shutdown(closed_node);

  ml_network* net = nullptr;
  cfg = nullptr;
  if (ml_network_create(&net) != ML_OK || ml_config_new_local(&cfg) != ML_OK ||
      ml_config_set_network(cfg, net, "127.0.0.1:7004") != ML_OK)
    fail("network", 0);
  ml_config_set_log_level(cfg, ML_LOG_OFF);
  if (ml_memberlist_create(&net_node, nullptr, cfg, nullptr) != ML_OK) fail("create d", 0);
  ml_config_free(cfg);
  ml_network_destroy(net);

  std::lock_guard<std::mutex> l(mu);
  auto_deliver = false;
  baseline = __sanitizer_get_current_allocated_bytes();
}

// A source address: mostly the peer's, sometimes a stranger's or garbage.
const char* pick_from(FuzzedDataProvider& in, int to, bool& valid) {
  static const char* const bad[] = {nullptr, "", "garbage", "1.2.3.4", "127.0.0.1:99999", "[::1", "0.0.0.0:0",
                                    "[fe80::1%eth0]:1"};
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
    case 1:
      valid = true;
      return kAddr[1 - to];
    case 2:
      valid = true;
      return "10.9.8.7:7946";
    default:
      valid = false;
      return bad[in.ConsumeIntegralInRange<size_t>(0, std::size(bad) - 1)];
  }
}

// Bytes for a message: fuzz bytes, or a recorded real one cut short or with a byte changed.
std::vector<uint8_t> pick_bytes(FuzzedDataProvider& in, bool from_stream) {
  std::vector<uint8_t> real;
  if (in.ConsumeBool()) {
    std::lock_guard<std::mutex> l(mu);
    if (from_stream && !streams.empty()) real = streams[in.ConsumeIntegral<size_t>() % streams.size()].data;
    if (!from_stream && !packets.empty()) real = packets[in.ConsumeIntegral<size_t>() % packets.size()].data;
  }
  if (real.empty()) return in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 2048));
  if (in.ConsumeBool()) real.resize(in.ConsumeIntegralInRange<size_t>(0, real.size()));
  if (!real.empty() && in.ConsumeBool()) real[in.ConsumeIntegral<size_t>() % real.size()] ^= in.ConsumeIntegral<uint8_t>();
  return real;
}

void inject_packet(FuzzedDataProvider& in, bool oversized) {
  const int to = in.ConsumeBool();
  bool valid = false;
  const char* from = pick_from(in, to, valid);
  std::vector<uint8_t> data = pick_bytes(in, false);
  if (oversized) data.resize(in.PickValueInArray({65507, 65508, 70000, 1 << 20}), 0xa5);
  const ml_status s = ml_memberlist_transport_packet(nodes[to], from, data.data(), data.size());
  check_error(nodes[to], s);
  if (valid && data.size() > 65507 && s != ML_E_TOO_LARGE) fail("an oversized datagram not refused", s);
  if (valid && data.size() <= 65507 && s != ML_OK) fail("a datagram refused", s);
  if (!valid && s != ML_OK && s != ML_E_INVALID && !(s == ML_E_TOO_LARGE && data.size() > 65507))
    fail("a bad source: unexpected status", s);
  if (from == nullptr && s != ML_E_INVALID) fail("a NULL source taken", s);
}

void inject_stream(FuzzedDataProvider& in, bool oversized) {
  const int to = in.ConsumeBool();
  bool valid = false;
  const char* from = pick_from(in, to, valid);
  std::vector<uint8_t> data = pick_bytes(in, true);
  if (oversized) data.resize(in.PickValueInArray({(64 << 10) + 1, 1 << 20}), 0x5a);
  uint64_t t;
  {
    std::lock_guard<std::mutex> l(mu);
    t = next_injected++;
    inbound[t];
  }
  const ml_status s = ml_memberlist_transport_stream(nodes[to], from, t, data.data(), data.size());
  check_error(nodes[to], s);
  if (valid && s != ML_OK && s != ML_E_STATE) fail("an inbound stream: unexpected status", s);
  if (!valid && s != ML_OK && s != ML_E_INVALID && s != ML_E_STATE) fail("a bad source: unexpected status", s);
  if (s == ML_E_INVALID) {  // refused before it became a stream: never answered
    std::lock_guard<std::mutex> l(mu);
    inbound.erase(t);
  } else if (s != ML_OK) {
    mark_refused(t);
  }
}

// Completes a recorded outgoing stream (kept for a second completion, or not), or an
// unknown token.
void complete(FuzzedDataProvider& in) {
  Stream st{};
  bool known = false;
  {
    std::lock_guard<std::mutex> l(mu);
    if (!streams.empty() && in.ConsumeBool()) {
      const size_t k = in.ConsumeIntegral<size_t>() % streams.size();
      st = streams[k];
      streams.erase(streams.begin() + static_cast<std::ptrdiff_t>(k));
      known = true;
    }
  }
  if (!known) {
    st.from = in.ConsumeBool();
    st.token = in.ConsumeIntegral<uint64_t>();
  }
  const ml_status status = in.PickValueInArray<ml_status>({ML_OK, ML_OK, ML_E_TIMEOUT, ML_E_REJECTED, ML_E_IO,
                                                           ML_E_INVALID, static_cast<ml_status>(12345)});
  std::vector<uint8_t> reply = pick_bytes(in, true);
  if (in.ConsumeBool()) reply.resize(in.PickValueInArray({(64 << 10) + 1, 1 << 20}), 0x3c);
  ml_memberlist* ml = nodes[st.from];
  const ml_status s = ml_memberlist_transport_stream_done(ml, st.token, status, reply.data(), reply.size());
  check_error(ml, s);
  if (s != ML_OK && s != ML_E_NOT_FOUND) fail("stream_done: unexpected status", s);
  if (s == ML_OK && in.ConsumeBool()) {
    const ml_status again = ml_memberlist_transport_stream_done(ml, st.token, ML_OK, nullptr, 0);
    if (again != ML_E_NOT_FOUND) fail("a token completed twice", again);
  }
}

// A recorded datagram or stream delivered to the peer, or dropped.
void deliver(FuzzedDataProvider& in, bool stream) {
  const bool drop = in.ConsumeIntegralInRange<int>(0, 3) == 0;
  if (stream) {
    Stream st;
    {
      std::lock_guard<std::mutex> l(mu);
      if (streams.empty()) return;
      st = std::move(streams.front());
      streams.pop_front();
    }
    if (!drop) relay_stream(st.from, 1 - st.from, st.token, st.data.data(), st.data.size());
    // dropped: never completed, the library times it out
  } else {
    Packet p;
    {
      std::lock_guard<std::mutex> l(mu);
      if (packets.empty()) return;
      p = std::move(packets.front());
      packets.pop_front();
    }
    if (!drop && ml_memberlist_transport_packet(nodes[1 - p.from], kAddr[p.from], p.data.data(), p.data.size()) != ML_OK)
      fail("a recorded datagram refused", 0);
  }
}

// Everything still recorded goes to its peer unchanged, so that the nodes stay a cluster.
void flush() {
  for (;;) {
    std::deque<Packet> ps;
    std::deque<Stream> ss;
    {
      std::lock_guard<std::mutex> l(mu);
      ps.swap(packets);
      ss.swap(streams);
    }
    if (ps.empty() && ss.empty()) return;
    for (auto& p : ps) ml_memberlist_transport_packet(nodes[1 - p.from], kAddr[p.from], p.data.data(), p.data.size());
    for (auto& s : ss) relay_stream(s.from, 1 - s.from, s.token, s.data.data(), s.data.size());
  }
}

void check_budget() {
  // Queues drain on library threads: give them time before calling it a leak.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  size_t held = 0;
  while ((held = __sanitizer_get_current_allocated_bytes()) > baseline + kBudget) {
    if (std::chrono::steady_clock::now() > deadline) fail("allocation budget exceeded (bytes)", static_cast<long>(held - baseline));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool ready = (set_up(), true);
  (void)ready;
  FuzzedDataProvider in(data, size);
  int big = 0;  // oversized operations per input, so that one input stays cheap
  for (int ops = 0; ops < 64 && in.remaining_bytes() > 0; ++ops) {
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
      case 0:
      case 1:
        inject_packet(in, false);
        break;
      case 2:
        inject_packet(in, big++ < 2);
        break;
      case 3:
      case 4:
        inject_stream(in, false);
        break;
      case 5:
        inject_stream(in, big++ < 2);
        break;
      case 6:
      case 7:
        complete(in);
        break;
      case 8:
        deliver(in, false);
        break;
      default:
        deliver(in, true);
        break;
    }
  }
  {
    // The nodes that must refuse everything.
    const uint8_t b = 0;
    if (ml_memberlist_transport_packet(closed_node, kAddr[1], &b, 1) != ML_E_CLOSED ||
        ml_memberlist_transport_stream(closed_node, kAddr[1], 1, &b, 1) != ML_E_CLOSED ||
        ml_memberlist_transport_stream_done(closed_node, 1, ML_OK, nullptr, 0) != ML_E_CLOSED)
      fail("a shut-down node took bytes", 0);
    if (ml_memberlist_transport_packet(net_node, kAddr[1], &b, 1) != ML_E_STATE ||
        ml_memberlist_transport_stream(net_node, kAddr[1], 1, &b, 1) != ML_E_STATE ||
        ml_memberlist_transport_stream_done(net_node, 1, ML_OK, nullptr, 0) != ML_E_STATE)
      fail("a node without a host transport took bytes", 0);
  }
  flush();
  check_budget();
  return 0;
}
