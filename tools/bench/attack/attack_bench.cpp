// The attack benchmark (docs/security.md): each attack of the threat model, sustained for a
// few seconds from an attacker socket on 127.0.0.2 against the target of a live 3-node
// cluster on 127.0.0.1 with the default (LAN) timers. The target runs in its own process, so
// that its CPU time and peak RSS are its own; its log callback is slow (1 ms a line), as a
// host's might be. Prints one table row per attack: what was sent, the target's CPU and
// memory, what the bound let through, and the false suspicions and deaths of healthy nodes.
//
//   memberlist-attack-bench [--seconds 10] [--encrypted] [--only name,name]
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "attack/payloads.h"
#include "runtime/node.h"

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace memberlist;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using core::Status;

namespace {

const core::Bytes kKey(16, 0x42);

runtime::Options node_options(const std::string& name, bool encrypted) {
  runtime::Options o;
  o.core = core::Config::lan();
  o.core.name = name;
  o.core.seed = std::hash<std::string>{}(name);
  o.bind_addr = "127.0.0.1";
  o.bind_port = 0;
  if (encrypted) {
    o.framing.keyring = std::make_shared<wire::Keyring>();
    (void)o.framing.keyring->install(kKey);
  }
  return o;
}

// ---- the target, in a child process -------------------------------------------------------

// What the target saw, written to the parent as one line when it is told to stop.
struct TargetReport {
  uint64_t suspicions = 0, deaths = 0;  // of its healthy peers
  uint64_t log_lines = 0, log_dropped = 0, refused_streams = 0, bad_messages = 0, frame_errors = 0;
  uint64_t broadcasts_dropped = 0, reply_budget = 0;
  size_t max_queued_broadcasts = 0;
  uint32_t incarnation_change = 0;
};

double metric_value(const runtime::Node& n, const std::string& name, const std::string& label = "",
                    const std::string& value = "") {
  double sum = 0;
  for (const auto& m : n.metrics()) {
    if (m.name != name) continue;
    bool match = label.empty();
    for (const auto& [k, v] : m.labels) match = match || (k == label && v == value);
    if (match) sum += m.value;
  }
  return sum;
}

[[noreturn]] void run_target(int to_parent, int from_parent, bool encrypted) {
  auto rt = std::make_shared<runtime::Runtime>(1);
  auto log_lines = std::make_shared<std::atomic<uint64_t>>(0);
  auto deaths = std::make_shared<std::atomic<uint64_t>>(0);
  runtime::Callbacks cb;
  cb.log_level = core::LogLevel::Info;
  cb.on_log = [log_lines](core::LogLevel, const std::string&) {
    ++*log_lines;
    std::this_thread::sleep_for(1ms);  // a slow host
  };
  cb.on_event = [deaths](const core::Event& e) {
    // Only the 3 healthy members count (the attack's own "d" leaves).
    if (e.type == core::EventType::Leave && e.node.state == core::NodeState::Dead && e.node.name != "d") ++*deaths;
  };
  Status st;
  auto node = runtime::Node::create(rt, node_options("target", encrypted), cb, st);
  if (!node) {
    std::fprintf(stderr, "target: %s\n", st.message.c_str());
    _exit(1);
  }
  std::string port = std::to_string(node->advertise_address().port) + "\n";
  (void)!write(to_parent, port.data(), port.size());
  const uint32_t incarnation = node->local_node().incarnation;
  auto suspicions_at_start = node->stats().suspicions;
  // Sample the broadcast queue until the parent says stop (one byte).
  TargetReport r;
  for (;;) {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(from_parent, &fds);
    timeval tv{0, 100000};
    r.max_queued_broadcasts = std::max(r.max_queued_broadcasts, node->num_queued_broadcasts());
    if (select(from_parent + 1, &fds, nullptr, nullptr, &tv) > 0) break;
  }
  auto stats = node->stats();
  auto rs = node->runtime_stats();
  r.suspicions = stats.suspicions - suspicions_at_start;
  r.deaths = *deaths;
  r.log_lines = *log_lines;
  r.log_dropped = rs.log_lines_dropped;
  r.refused_streams = rs.refused_streams;
  r.bad_messages = stats.bad_messages;
  for (auto v : rs.frame_errors) r.frame_errors += v;
  r.broadcasts_dropped = uint64_t(metric_value(*node, "memberlist.user.broadcasts.dropped"));
  r.reply_budget = uint64_t(metric_value(*node, "memberlist.bad_messages", "reason", "reply_budget"));
  r.incarnation_change = node->local_node().incarnation - incarnation;
  std::ostringstream line;
  line << r.suspicions << ' ' << r.deaths << ' ' << r.log_lines << ' ' << r.log_dropped << ' ' << r.refused_streams
       << ' ' << r.bad_messages << ' ' << r.frame_errors << ' ' << r.broadcasts_dropped << ' ' << r.reply_budget << ' '
       << r.max_queued_broadcasts << ' ' << r.incarnation_change << '\n';
  std::string s = line.str();
  (void)!write(to_parent, s.data(), s.size());
  _exit(0);  // no teardown: the parent has what it needs
}

// ---- measuring a process ------------------------------------------------------------------

double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  std::istringstream in(s.substr(s.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

size_t status_kib(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

void reset_peak_rss(pid_t pid) { std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5"; }

// ---- the attacks ----------------------------------------------------------------------------

struct Context {
  asio::io_context& ioc;
  udp::socket& attacker;
  udp::endpoint target_udp;
  tcp::endpoint target_tcp;
  std::chrono::seconds duration;
  std::shared_ptr<const core::Codec> codec;
  std::function<bool()> new_node_joins;  // a fresh node joins through the target
  std::string sent;                      // what the attack sent, for the table
  std::string let_through;               // what its bound let through
  std::vector<tcp::socket> held;         // connections kept open until the row is measured
};

core::Address attacker_address(const Context& c) {
  return core::Address::v4(127, 0, 0, 2, c.attacker.local_endpoint().port());
}

// Calls `each(i)` `per_second` times a second, evenly, for the attack's duration.
void at_rate(const Context& c, int per_second, const std::function<void(int)>& each) {
  auto start = Clock::now();
  auto period = std::chrono::microseconds(1000000 / per_second);
  for (int i = 0; Clock::now() - start < c.duration; ++i) {
    each(i);
    std::this_thread::sleep_until(start + period * (i + 1));
  }
}

tcp::socket connect_from_attacker(Context& c, boost::system::error_code& ec) {
  tcp::socket s(c.ioc);
  s.open(tcp::v4());
  s.bind(tcp::endpoint(asio::ip::make_address("127.0.0.2"), 0));
  s.connect(c.target_tcp, ec);
  return s;
}

std::string mib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", bytes / (1 << 20));
  return b;
}

void decompression_bombs(Context& c) {
  auto honest = attack::bomb_frame(40u << 20), lying = attack::bomb_frame(64u << 10);
  size_t n = 0;
  at_rate(c, 25, [&](int) {
    c.attacker.send_to(asio::buffer(honest), c.target_udp);
    c.attacker.send_to(asio::buffer(lying), c.target_udp);
    n += 2;
  });
  c.sent = std::to_string(n) + " datagrams of " + std::to_string(honest.size() / 1000) + " KB inflating to 40 MiB";
}

void ping_amplification(Context& c) {
  auto frame = attack::plain_frame(attack::ping_compound(*c.codec, attacker_address(c)), true);
  size_t n = 0, acks = 0;
  c.attacker.non_blocking(true);
  std::array<uint8_t, 65536> buf{};
  auto drain = [&] {
    boost::system::error_code ec;
    udp::endpoint from;
    for (size_t len; (len = c.attacker.receive_from(asio::buffer(buf), from, 0, ec)), !ec;) {
      core::Bytes payload;
      std::vector<core::Message> msgs;
      if (!wire::open_packet({}, std::span<const uint8_t>(buf.data(), len), payload).ok()) continue;
      (void)c.codec->decode(payload, msgs);
      for (const auto& m : msgs) acks += std::holds_alternative<core::Ack>(m) ? 1 : 0;
    }
  };
  at_rate(c, 100, [&](int) {
    c.attacker.send_to(asio::buffer(frame), c.target_udp);
    ++n;
    drain();
  });
  std::this_thread::sleep_for(500ms);
  drain();
  c.attacker.non_blocking(false);
  c.sent = std::to_string(n) + " compounds of 255 pings (" + std::to_string(frame.size()) + " B each)";
  c.let_through = std::to_string(acks) + " acks to the attacker (" + std::to_string(n * 255) + " asked)";
}

void forwarded_broadcasts(Context& c) {
  size_t n = 0;
  at_rate(c, 12, [&](int i) {
    c.attacker.send_to(asio::buffer(attack::plain_frame(attack::broadcast_compound(*c.codec, size_t(i) * 255), true)),
                       c.target_udp);
    ++n;
  });
  c.sent = std::to_string(n) + " datagrams, " + std::to_string(n * 255) + " unique broadcasts";
}

void bad_datagrams(Context& c) {
  std::mt19937 rng(7);
  size_t n = 0;
  at_rate(c, 2000, [&](int i) {
    core::Bytes junk(50 + rng() % 500);
    for (auto& v : junk) v = static_cast<uint8_t>(rng());
    // Alternately raw junk (refused by the framing) and well-framed junk (by the codec).
    c.attacker.send_to(asio::buffer(i % 2 ? junk : attack::plain_frame(junk, false)), c.target_udp);
    ++n;
  });
  c.sent = std::to_string(n) + " malformed datagrams";
}

void stalled_streams(Context& c) {
  const uint32_t len = (20u << 20) - 16;
  core::Bytes head = attack::stream_header(len);
  head.resize(head.size() + (19u << 20), 1);  // most of the body, then stall
  size_t written = 0;
  for (int i = 0; i < 128; ++i) {
    boost::system::error_code ec;
    c.held.push_back(connect_from_attacker(c, ec));
    if (ec) continue;
    written += asio::write(c.held.back(), asio::buffer(head), ec);  // refused ones fail early
  }
  std::this_thread::sleep_for(c.duration);
  c.sent = "128 streams declaring 20 MiB, " + mib(double(written)) + " written, then stalled";
}

void forged_version(Context& c) {
  core::Alive fake{1, "fake", core::Address::v4(127, 0, 0, 2, 9), {}, core::Vsn{1, 34, 34, 2, 5, 5}};
  c.attacker.send_to(asio::buffer(attack::plain_frame(c.codec->encode(fake), false)), c.target_udp);
  std::this_thread::sleep_for(c.duration);
  c.sent = "1 alive at protocol version 34";
  c.let_through = c.new_node_joins() ? "a new node then joined" : "a new node could NOT join";
}

void incarnation_wrap(Context& c) {
  core::Alive alive{UINT32_MAX, "target", core::Address::v4(127, 0, 0, 1, c.target_udp.port()), {}, core::Config{}.vsn()};
  c.attacker.send_to(asio::buffer(attack::plain_frame(c.codec->encode(alive), false)), c.target_udp);
  c.attacker.send_to(asio::buffer(attack::plain_frame(c.codec->encode(core::Suspect{UINT32_MAX, "target", "x"}), false)),
                     c.target_udp);
  std::this_thread::sleep_for(c.duration);
  c.sent = "alive and suspect about the target at incarnation 2^32-1";
}

void held_connections(Context& c) {
  for (int i = 0; i < 200; ++i) {
    boost::system::error_code ec;
    c.held.push_back(connect_from_attacker(c, ec));
  }
  std::this_thread::sleep_for(c.duration / 2);
  c.sent = "200 idle connections from one address";
  c.let_through = c.new_node_joins() ? "a new node joined meanwhile" : "a new node could NOT join";
  std::this_thread::sleep_for(c.duration / 2);
}

void idle(Context& c) {
  std::this_thread::sleep_for(c.duration);
  c.sent = "nothing (the baseline)";
}

struct Attack {
  const char* name;
  void (*run)(Context&);
  // What its bound let through, from the target's report (when run() did not say).
  std::string (*through)(const TargetReport&);
};
std::string num(uint64_t v) { return std::to_string(v); }
const Attack kAttacks[] = {
    {"idle", idle, [](const TargetReport&) { return std::string("-"); }},
    {"decompression_bombs", decompression_bombs,
     [](const TargetReport& r) { return num(r.frame_errors) + " refused, none inflated beyond 64 KiB"; }},
    {"ping_amplification", ping_amplification, nullptr},
    {"forwarded_broadcasts", forwarded_broadcasts,
     [](const TargetReport& r) {
       return "queue peaked at " + num(r.max_queued_broadcasts) + ", " + num(r.broadcasts_dropped) + " dropped";
     }},
    {"bad_datagrams", bad_datagrams,
     [](const TargetReport& r) {
       return num(r.bad_messages) + " refused; " + num(r.log_lines) + " log lines, " + num(r.log_dropped) +
              " dropped";
     }},
    {"stalled_streams", stalled_streams, [](const TargetReport& r) { return num(r.refused_streams) + " streams refused"; }},
    {"forged_version", forged_version, nullptr},
    {"incarnation_wrap", incarnation_wrap,
     [](const TargetReport& r) { return "target's incarnation +" + num(r.incarnation_change); }},
    {"held_connections", held_connections, nullptr},
};

// One row: a fresh cluster, the attack, a grace period for late suspicions, the figures.
void run_row(const Attack& a, std::chrono::seconds duration, bool encrypted) {
  int up[2], down[2];
  if (pipe(up) != 0 || pipe(down) != 0) return;
  pid_t pid = fork();
  if (pid == 0) {
    // A fresh process image, so that the target's memory is its own, not this one's copy.
    close(up[0]);
    close(down[1]);
    execl("/proc/self/exe", "memberlist-attack-bench", "--target", std::to_string(up[1]).c_str(),
          std::to_string(down[0]).c_str(), encrypted ? "1" : "0", nullptr);
    _exit(127);
  }
  close(up[1]);
  close(down[0]);
  FILE* from_target = fdopen(up[0], "r");
  unsigned port = 0;
  if (std::fscanf(from_target, "%u", &port) != 1) {
    std::fprintf(stderr, "%s: the target did not start\n", a.name);
    return;
  }
  const std::string target_addr = "127.0.0.1:" + std::to_string(port);

  auto rt = std::make_shared<runtime::Runtime>(1);
  auto deaths = std::make_shared<std::atomic<uint64_t>>(0);
  runtime::Callbacks cb;
  cb.log_level = core::LogLevel::Error;
  cb.on_log = [](core::LogLevel, const std::string&) {};
  cb.on_event = [deaths](const core::Event& e) {
    // Only the 3 healthy members count (the attack's own "d" leaves).
    if (e.type == core::EventType::Leave && e.node.state == core::NodeState::Dead && e.node.name != "d") ++*deaths;
  };
  Status st;
  std::vector<std::shared_ptr<runtime::Node>> peers;
  for (const char* name : {"b", "c"}) {
    peers.push_back(runtime::Node::create(rt, node_options(name, encrypted), cb, st));
    if (!peers.back() || peers.back()->join({target_addr}, st) != 1) {
      std::fprintf(stderr, "%s: %s could not join: %s\n", a.name, name, st.message.c_str());
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return;
    }
  }
  for (auto deadline = Clock::now() + 30s; Clock::now() < deadline;) {
    if (peers[0]->num_members() == 3 && peers[1]->num_members() == 3) break;
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(2s);  // settle
  uint64_t peer_suspicions = peers[0]->stats().suspicions + peers[1]->stats().suspicions;

  asio::io_context ioc;
  udp::socket attacker(ioc, udp::endpoint(asio::ip::make_address("127.0.0.2"), 0));
  attacker.set_option(asio::socket_base::send_buffer_size(4 << 20));
  Context c{ioc, attacker, {asio::ip::make_address("127.0.0.1"), uint16_t(port)},
            {asio::ip::make_address("127.0.0.1"), uint16_t(port)}, duration, wire::make_flatbuffers_codec(), {}, {}, {}, {}};
  c.new_node_joins = [&] {
    Status s;
    auto d = runtime::Node::create(rt, node_options("d", encrypted), {}, s);
    bool ok = d && d->join({target_addr}, s) == 1;
    // It leaves gracefully: its going is no false death.
    if (ok) (void)d->leave(std::chrono::seconds(5));
    if (d) d->shutdown();
    return ok;
  };
  const size_t rss_before = status_kib(pid, "VmRSS");
  reset_peak_rss(pid);
  const double cpu_before = cpu_seconds(pid);
  const auto start = Clock::now();
  a.run(c);
  const double attack_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = cpu_seconds(pid) - cpu_before;
  const size_t peak = status_kib(pid, "VmHWM");
  c.held.clear();
  // Late suspicions: the LAN preset's suspicion timeout for 3 nodes is 4-24 s, and a
  // suspicion raised now is what would become a false death.
  std::this_thread::sleep_for(6s);
  const size_t rss_after = status_kib(pid, "VmRSS");
  peer_suspicions = peers[0]->stats().suspicions + peers[1]->stats().suspicions - peer_suspicions;

  (void)!write(down[1], "x", 1);
  TargetReport r;
  int got = std::fscanf(from_target, "%lu %lu %lu %lu %lu %lu %lu %lu %lu %zu %u", &r.suspicions, &r.deaths,
                        &r.log_lines, &r.log_dropped, &r.refused_streams, &r.bad_messages, &r.frame_errors,
                        &r.broadcasts_dropped, &r.reply_budget, &r.max_queued_broadcasts, &r.incarnation_change);
  fclose(from_target);
  close(down[1]);
  waitpid(pid, nullptr, 0);
  for (auto& p : peers) p->shutdown();
  if (got != 11) {
    std::fprintf(stderr, "%s: no report from the target\n", a.name);
    return;
  }
  if (c.let_through.empty() && a.through) c.let_through = a.through(r);
  char cpu_cell[64];
  std::snprintf(cpu_cell, sizeof cpu_cell, "%.2f s (%.0f%%)", cpu, 100 * cpu / attack_seconds);
  std::cout << "| " << a.name << " | " << c.sent << " | " << cpu_cell << " | " << mib((peak - rss_before) * 1024.0)
            << " | " << mib(double(rss_after) * 1024) << " | " << c.let_through << " | "
            << peer_suspicions + r.suspicions << " / " << *deaths + r.deaths << " |" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--target") {
    run_target(std::atoi(argv[2]), std::atoi(argv[3]), std::string(argv[4]) == "1");
  }
  int seconds = 10;
  bool encrypted = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--encrypted") {
      encrypted = true;
    } else if (a == "--only" && i + 1 < argc) {
      only = "," + std::string(argv[++i]) + ",";
    } else {
      std::cerr << "usage: memberlist-attack-bench [--seconds N] [--encrypted] [--only name,name]\n";
      return 2;
    }
  }
  std::cout << "Target: 1 of 3 nodes, LAN timers, " << (encrypted ? "a key the attacker lacks" : "no key")
            << ", log callback 1 ms a line; each attack sustained " << seconds << " s, then 6 s of grace.\n\n"
            << "| attack | sent | target CPU | target peak RSS growth | target RSS after | what got through | "
               "false suspicions / deaths |\n|---|---|---|---|---|---|---|"
            << std::endl;
  for (const auto& a : kAttacks) {
    if (only.empty() || only.find("," + std::string(a.name) + ",") != std::string::npos) {
      run_row(a, std::chrono::seconds(seconds), encrypted);
    }
  }
  return 0;
}
