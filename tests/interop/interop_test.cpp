// Our nodes in hashicorp mode and Go memberlist 0.2.2 nodes (tests/interop/peer, Debian's
// golang-github-hashicorp-memberlist-dev) in one cluster on loopback, with short timers.
// Every wait is on the condition itself with a generous deadline (a loaded 2-core machine).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "go_peer.h"
#include "runtime/node.h"
#include "wire/hashicorp/codec.h"
#include "wire/keyring.h"

#ifndef ML_GO_PEER
#error "ML_GO_PEER must name the Go peer binary"
#endif

namespace memberlist::interop {
namespace {

using namespace std::chrono_literals;
using core::EventType;
using core::NodeState;
using runtime::Node;
using runtime::Options;

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 60s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return cond();
}

std::string log_path(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = "interop-logs";
  std::filesystem::create_directories(dir);
  std::string test = std::string(info->test_suite_name()) + "." + info->name();
  std::replace(test.begin(), test.end(), '/', '_');
  return dir + "/" + test + "." + name + ".log";
}

// What one of our nodes received, and a push/pull user state it offers.
struct Ours : core::Delegate {
  std::mutex mu;
  std::vector<core::Event> events;
  std::vector<std::string> msgs;
  std::vector<std::string> merged;
  std::string state;

  core::Bytes local_state(bool) override {
    std::lock_guard<std::mutex> l(mu);
    return core::Bytes(state.begin(), state.end());
  }
  void merge_remote_state(std::span<const uint8_t> s, bool) override {
    std::lock_guard<std::mutex> l(mu);
    merged.emplace_back(s.begin(), s.end());
  }
  runtime::Callbacks callbacks() {
    runtime::Callbacks cb;
    cb.on_event = [this](const core::Event& e) {
      std::lock_guard<std::mutex> l(mu);
      events.push_back(e);
    };
    cb.on_notification = [this](const core::Notification& n) {
      if (const auto* m = std::get_if<core::UserMessage>(&n)) {
        std::lock_guard<std::mutex> l(mu);
        msgs.emplace_back(m->payload.begin(), m->payload.end());
      }
    };
    return cb;
  }
  bool saw(EventType t, const std::string& name, NodeState st) {
    std::lock_guard<std::mutex> l(mu);
    for (const auto& e : events)
      if (e.type == t && e.node.name == name && e.node.state == st) return true;
    return false;
  }
  bool got(const std::string& m) {
    std::lock_guard<std::mutex> l(mu);
    return std::find(msgs.begin(), msgs.end(), m) != msgs.end();
  }
  bool got_state(const std::string& m) {
    std::lock_guard<std::mutex> l(mu);
    return std::find(merged.begin(), merged.end(), m) != merged.end();
  }
};

struct Settings {
  std::string key;      // "" = no encryption
  bool compress = true;
  bool addr16 = false;  // Go: advertise IPv4 as 16 bytes (as with an autodetected address)
  int dmin = 0, dmax = 0, dcur = 0;  // delegate protocol versions
  int protocol = 2;                  // protocol version (1: encryption version 0, padded)
};

class Interop : public ::testing::Test {
 protected:
  std::shared_ptr<runtime::Runtime> rt = std::make_shared<runtime::Runtime>(2);
  std::vector<std::shared_ptr<Node>> ours;
  std::vector<std::shared_ptr<Ours>> ours_d;
  std::vector<std::unique_ptr<GoPeer>> gos;
  std::vector<std::string> go_addr;

  void TearDown() override {
    ours.clear();
    gos.clear();
  }

  // One of ours, hashicorp mode, short timers (as the runtime tests' fast options).
  Node* add_ours(const std::string& name, const Settings& s = {}, const std::string& meta = "") {
    Options o;
    o.core = core::Config::local();
    o.core.name = name;
    o.core.probe_interval = 200ms;
    o.core.probe_timeout = 100ms;
    o.core.gossip_interval = 50ms;
    o.core.suspicion_mult = 2;
    o.core.push_pull_interval = 2s;
    o.core.gossip_to_the_dead_time = 5s;
    o.core.meta = core::Bytes(meta.begin(), meta.end());
    o.core.seed = std::hash<std::string>{}(name);
    o.bind_addr = "127.0.0.1";
    o.bind_port = 0;
    o.wire_format = wire::WireFormat::hashicorp;
    o.framing.compress = s.compress;
    o.core.protocol_version = static_cast<uint8_t>(s.protocol);
    o.core.delegate_protocol_min = static_cast<uint8_t>(s.dmin);
    o.core.delegate_protocol_max = static_cast<uint8_t>(s.dmax);
    o.core.delegate_protocol_version = static_cast<uint8_t>(s.dcur);
    if (!s.key.empty()) {
      o.framing.keyring = std::make_shared<wire::Keyring>();
      EXPECT_TRUE(o.framing.keyring->install(core::Bytes(s.key.begin(), s.key.end())).ok());
    }
    auto d = std::make_shared<Ours>();
    o.core.delegate = d;
    core::Status st;
    auto n = Node::create(rt, std::move(o), d->callbacks(), st);
    EXPECT_TRUE(n) << st.message;
    if (!n) return nullptr;
    ours.push_back(n);
    ours_d.push_back(d);
    return n.get();
  }

  // A Go node; returns its index in `gos`, -1 if it did not start.
  int add_go(const std::string& name, const Settings& s = {}, const std::string& meta = "",
             const std::string& state = "") {
    gos.push_back(std::make_unique<GoPeer>(ML_GO_PEER, log_path(name)));
    std::string f = "\"name\":" + quote(name) + ",\"bind\":\"127.0.0.1\",\"port\":0,\"probe_ms\":200,"
                    "\"gossip_ms\":50,\"push_pull_ms\":2000,\"suspicion_mult\":2,\"meta\":" +
                    quote(meta) + ",\"state\":" + quote(state) + ",\"compress\":" + (s.compress ? "true" : "false");
    if (!s.key.empty()) f += ",\"keys\":[" + quote(s.key) + "]";
    if (s.addr16) f += ",\"addr16\":true";
    f += ",\"delegate_min\":" + std::to_string(s.dmin) + ",\"delegate_max\":" + std::to_string(s.dmax) +
         ",\"delegate_version\":" + std::to_string(s.dcur) + ",\"protocol_version\":" + std::to_string(s.protocol);
    auto ev = gos.back()->call("start", f, "started");
    EXPECT_TRUE(ev) << "the Go peer did not answer";
    if (!ev) return -1;
    EXPECT_EQ(GoPeer::get(*ev, "err"), "");
    go_addr.push_back(GoPeer::get(*ev, "addr"));
    return static_cast<int>(gos.size()) - 1;
  }

  static std::string addr(const Node& n) { return n.advertise_address().to_string(); }

  // Go node `g` joins `to`; returns the number joined (-1 on no answer) and the error.
  std::pair<int, std::string> go_join(int g, const std::string& to) {
    auto ev = gos[g]->call("join", "\"addrs\":[" + quote(to) + "]", "joined");
    if (!ev) return {-1, "no answer"};
    return {std::stoi(GoPeer::get(*ev, "n")), GoPeer::get(*ev, "err")};
  }

  // Every node, ours and Go's, lists exactly `names` alive, and all agree on each one's
  // incarnation and metadata.
  bool agree(const std::vector<std::string>& names) {
    std::map<std::string, std::pair<uint32_t, std::string>> ref;
    for (auto& n : ours) {
      auto ms = n->members();
      if (ms.size() != names.size()) return false;
      for (const auto& m : ms) {
        if (std::find(names.begin(), names.end(), m.name) == names.end() || m.state != NodeState::Alive) return false;
        auto v = std::pair{m.incarnation, std::string(m.meta.begin(), m.meta.end())};
        if (auto [it, fresh] = ref.emplace(m.name, v); !fresh && it->second != v) return false;
      }
    }
    for (auto& g : gos) {
      if (!g->running()) continue;
      auto ms = g->members();
      if (ms.size() != names.size()) return false;
      for (auto& [name, e] : ms) {
        if (std::find(names.begin(), names.end(), name) == names.end() || GoPeer::get(e, "state") != "0") return false;
        auto v = std::pair{static_cast<uint32_t>(std::stoul(GoPeer::get(e, "inc"))), GoPeer::get(e, "meta")};
        if (auto [it, fresh] = ref.emplace(name, v); !fresh && it->second != v) return false;
      }
    }
    return true;
  }

  bool go_saw(int g, const std::string& ev, const std::string& name, const std::string& state = "") {
    return gos[g]->saw([&](const Event& e) {
      return GoPeer::get(e, "ev") == ev && GoPeer::get(e, "name") == name &&
             (state.empty() || GoPeer::get(e, "state") == state);
    });
  }
  bool go_got(int g, const std::string& data) {
    return gos[g]->saw([&](const Event& e) { return GoPeer::get(e, "ev") == "msg" && GoPeer::get(e, "data") == data; });
  }
};

// Our node joins a Go seed; a Go node joins our seed; then the two pairs join: all four see
// all four alive, with the same incarnations and metadata everywhere.
TEST_F(Interop, JoinBothWaysAgreeOnIncarnationsAndMeta) {
  int g0 = add_go("go-0", {}, "meta-go-0");
  ASSERT_GE(g0, 0);
  Node* n0 = add_ours("ours-0", {}, "meta-ours-0");
  ASSERT_TRUE(n0);
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return agree({"go-0", "ours-0"}); }));

  Node* n1 = add_ours("ours-1", {}, "meta-ours-1");
  int g1 = add_go("go-1", {}, "meta-go-1");
  ASSERT_TRUE(n1);
  ASSERT_GE(g1, 0);
  auto [joined, err] = go_join(g1, addr(*n1));
  EXPECT_EQ(joined, 1) << err;
  // The two pairs become one cluster through a join of ours to the Go seed.
  EXPECT_EQ(n1->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return agree({"go-0", "go-1", "ours-0", "ours-1"}); }));
  // Go saw our nodes join with their metadata and 4-byte addresses.
  EXPECT_TRUE(gos[g0]->saw([](const Event& e) {
    return GoPeer::get(e, "ev") == "join" && GoPeer::get(e, "name") == "ours-1" && GoPeer::get(e, "meta") == "meta-ours-1" &&
           GoPeer::get(e, "addr_len") == "4";
  }));
}

// A Go node whose alive carries its IPv4 address in 16 bytes: another Go node that learns
// it through our push/pull gets the same 16 bytes (Go compares address bytes: a 4-byte form
// would be another address and a conflict).
TEST_F(Interop, AddressFormOfAGoNodeIsKept) {
  Settings long_form;
  long_form.addr16 = true;
  int g16 = add_go("go-16", long_form);
  Node* n0 = add_ours("ours-0");
  ASSERT_TRUE(g16 >= 0 && n0);
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g16]}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return agree({"go-16", "ours-0"}); }));
  int g0 = add_go("go-0");
  ASSERT_GE(g0, 0);
  EXPECT_EQ(go_join(g0, addr(*n0)).first, 1);  // learns go-16 from us only
  EXPECT_TRUE(eventually([&] { return agree({"go-0", "go-16", "ours-0"}); }));
  auto joined = gos[g0]->wait_for([](const Event& e) { return GoPeer::get(e, "ev") == "join" && GoPeer::get(e, "name") == "go-16"; });
  ASSERT_TRUE(joined);
  EXPECT_EQ(GoPeer::get(*joined, "addr_len"), "16");
  auto conflict = [](const Event& e) { return GoPeer::get(e, "ev") == "conflict"; };
  EXPECT_FALSE(gos[g0]->saw(conflict));
  EXPECT_FALSE(gos[g16]->saw(conflict));
}

// One hashicorp suspect message, as a datagram to "host:port".
void send_suspect(const std::string& to, uint32_t incarnation, const std::string& node, const std::string& from) {
  namespace asio = boost::asio;
  auto colon = to.rfind(':');
  asio::io_context ioc;
  asio::ip::udp::socket s(ioc, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
  asio::ip::udp::endpoint ep(asio::ip::make_address(to.substr(0, colon)),
                             static_cast<uint16_t>(std::stoi(to.substr(colon + 1))));
  auto msg = wire::hashicorp::HashicorpCodec().encode(core::Suspect{incarnation, node, from});
  s.send_to(asio::buffer(msg), ep);
}

// A live node suspected by the other implementation refutes it: a suspect message about
// the Go node handed to ours spreads to the Go node, which raises its incarnation; one about
// our node handed to the Go node spreads to ours, which does the same. Everyone agrees on the
// new incarnations, and nobody is lost.
TEST_F(Interop, SuspectedLiveNodesRefuteAcrossImplementations) {
  int g0 = add_go("go-0");
  Node* n0 = add_ours("ours-0");
  ASSERT_TRUE(g0 >= 0 && n0);
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g0]}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return agree({"go-0", "ours-0"}); }));
  auto inc_at_go = [&](const std::string& name) -> uint32_t {
    auto ms = gos[g0]->members();
    auto it = ms.find(name);
    return it == ms.end() ? 0 : static_cast<uint32_t>(std::stoul(GoPeer::get(it->second, "inc")));
  };
  const uint32_t go_inc = inc_at_go("go-0"), our_inc = n0->local_node().incarnation;
  ASSERT_GT(go_inc, 0u);

  // Keep telling until the refutation is seen (a datagram may be lost).
  EXPECT_TRUE(eventually([&] {
    send_suspect(addr(*n0), go_inc, "go-0", "ours-0");
    return inc_at_go("go-0") > go_inc;
  }));
  EXPECT_TRUE(eventually([&] {
    send_suspect(go_addr[g0], our_inc, "ours-0", "go-0");
    return n0->local_node().incarnation > our_inc;
  }));
  EXPECT_GE(n0->stats().refutes, 1u);
  EXPECT_TRUE(eventually([&] { return agree({"go-0", "ours-0"}) && inc_at_go("ours-0") > our_inc; }));
  EXPECT_FALSE(ours_d[0]->saw(EventType::Leave, "go-0", NodeState::Dead));
  EXPECT_FALSE(go_saw(g0, "leave", "ours-0"));
}

// A Go node crashes: ours declare it dead. One of ours is destroyed: Go declares it dead.
TEST_F(Interop, CrashesAreDetectedBothWays) {
  int g0 = add_go("go-0");
  int g1 = add_go("go-1");
  Node* n0 = add_ours("ours-0");
  Node* n1 = add_ours("ours-1");
  ASSERT_TRUE(g0 >= 0 && g1 >= 0 && n0 && n1);
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_EQ(n1->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_EQ(go_join(g1, addr(*n0)).first, 1);
  ASSERT_TRUE(eventually([&] { return agree({"go-0", "go-1", "ours-0", "ours-1"}); }));

  gos[g1]->send("crash", "");
  gos[g1]->reap(10s);
  EXPECT_TRUE(eventually([&] {
    return ours_d[0]->saw(EventType::Leave, "go-1", NodeState::Dead) &&
           ours_d[1]->saw(EventType::Leave, "go-1", NodeState::Dead);
  }));

  ours[1].reset();  // destroyed without a leave
  EXPECT_TRUE(eventually([&] { return go_saw(g0, "leave", "ours-1", "2"); }));  // StateDead
}

// A graceful leave each way is seen as a leave (left, not dead).
TEST_F(Interop, GracefulLeaveBothWays) {
  int g0 = add_go("go-0");
  int g1 = add_go("go-1");
  Node* n0 = add_ours("ours-0");
  Node* n1 = add_ours("ours-1");
  ASSERT_TRUE(g0 >= 0 && g1 >= 0 && n0 && n1);
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_EQ(n1->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_EQ(go_join(g1, addr(*n0)).first, 1);
  ASSERT_TRUE(eventually([&] { return agree({"go-0", "go-1", "ours-0", "ours-1"}); }));

  auto left = gos[g1]->call("leave", "\"timeout_ms\":5000", "left");
  ASSERT_TRUE(left);
  EXPECT_EQ(GoPeer::get(*left, "err"), "");
  EXPECT_TRUE(eventually([&] { return ours_d[0]->saw(EventType::Leave, "go-1", NodeState::Left); }));
  EXPECT_FALSE(ours_d[0]->saw(EventType::Leave, "go-1", NodeState::Dead));

  ASSERT_TRUE(n1->leave(10s).ok());
  EXPECT_TRUE(eventually([&] { return go_saw(g0, "leave", "ours-1", "3"); }));  // StateLeft
  EXPECT_FALSE(go_saw(g0, "leave", "ours-1", "2"));
}

// User messages both ways: best-effort (a datagram) and reliable (a stream, 1 MiB);
// broadcasts both ways (Go's TransmitLimitedQueue through GetBroadcasts, ours through
// queue_broadcast) arrive as user messages; metadata updates both ways.
TEST_F(Interop, MessagesBroadcastsAndMetadataBothWays) {
  int g0 = add_go("go-0");
  Node* n0 = add_ours("ours-0");
  ASSERT_TRUE(g0 >= 0 && n0);
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g0]}, st), 1) << st.message;
  ASSERT_TRUE(eventually([&] { return agree({"go-0", "ours-0"}); }));

  const std::string big(1 << 20, 'R');
  EXPECT_TRUE(n0->send_best_effort("go-0", core::Bytes{'h', 'i', '-', 'g', 'o'}).ok());
  EXPECT_TRUE(n0->send_reliable("go-0", core::Bytes(big.begin(), big.end())).ok());
  EXPECT_TRUE(eventually([&] { return go_got(g0, "hi-go") && go_got(g0, big); }));

  auto sent = gos[g0]->call("send", "\"to\":\"ours-0\",\"data\":\"hi-ours\"", "sent");
  ASSERT_TRUE(sent);
  EXPECT_EQ(GoPeer::get(*sent, "err"), "");
  sent = gos[g0]->call("send", "\"to\":\"ours-0\",\"reliable\":true,\"data\":" + quote(big), "sent");
  ASSERT_TRUE(sent);
  EXPECT_EQ(GoPeer::get(*sent, "err"), "");
  EXPECT_TRUE(eventually([&] { return ours_d[0]->got("hi-ours") && ours_d[0]->got(big); }));

  uint64_t id = 0;
  EXPECT_TRUE(n0->queue_broadcast("", core::Bytes{'b', '-', 'o'}, id).ok());
  EXPECT_TRUE(eventually([&] { return go_got(g0, "b-o"); }));
  ASSERT_TRUE(gos[g0]->call("broadcast", "\"data\":\"b-go\"", "queued"));
  EXPECT_TRUE(eventually([&] { return ours_d[0]->got("b-go"); }));

  EXPECT_TRUE(n0->update_meta(core::Bytes{'m', '2'}, 10s).ok());
  EXPECT_TRUE(eventually([&] { return gos[g0]->saw([](const Event& e) {
    return GoPeer::get(e, "ev") == "update" && GoPeer::get(e, "name") == "ours-0" && GoPeer::get(e, "meta") == "m2";
  }); }));
  auto upd = gos[g0]->call("update_meta", "\"meta\":\"g2\",\"timeout_ms\":10000", "updated");
  ASSERT_TRUE(upd);
  EXPECT_EQ(GoPeer::get(*upd, "err"), "");
  EXPECT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> l(ours_d[0]->mu);
    for (const auto& e : ours_d[0]->events)
      if (e.type == EventType::Update && e.node.name == "go-0" && e.node.meta == core::Bytes{'g', '2'}) return true;
    return false;
  }));
  EXPECT_TRUE(eventually([&] { return agree({"go-0", "ours-0"}); }));
}

// Push/pull user state (LocalState / MergeRemoteState) both ways, at the join.
TEST_F(Interop, PushPullUserStateBothWays) {
  int g0 = add_go("go-0", {}, "", "state-of-go");
  Node* n0 = add_ours("ours-0");
  ASSERT_TRUE(g0 >= 0 && n0);
  {
    std::lock_guard<std::mutex> l(ours_d[0]->mu);
    ours_d[0]->state = "state-of-ours";
  }
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return ours_d[0]->got_state("state-of-go"); }));
  EXPECT_TRUE(gos[g0]->wait_for([](const Event& e) {
    return GoPeer::get(e, "ev") == "merge" && GoPeer::get(e, "data") == "state-of-ours";
  }));
}

// With one shared key of each size, the mixed cluster forms, encrypted, with and without
// compression; with the wrong key, a join is refused in both directions.
TEST_F(Interop, EncryptionSharedKeyAndWrongKey) {
  int i = 0;
  for (const std::string& key : {std::string(16, 'a'), std::string(24, 'b'), std::string(32, 'c')}) {
    Settings s{key, i % 2 == 0};
    std::string sfx = std::to_string(i++);
    int g = add_go("go-k" + sfx, s);
    Node* n = add_ours("ours-k" + sfx, s);
    ASSERT_TRUE(g >= 0 && n);
    core::Status st;
    EXPECT_EQ(n->join({go_addr[g]}, st), 1) << "key of " << key.size() << " bytes: " << st.message;
    EXPECT_TRUE(eventually([&] { return n->num_members() == 2 && gos[g]->members().size() == 2; }))
        << "key of " << key.size() << " bytes";
  }
  // Protocol version 1 encrypts with version 0 (PKCS#7 padding), 2 with version 1; each side
  // decrypts both, so mixed versions form one encrypted cluster too.
  for (auto [go_pv, our_pv] : {std::pair{1, 1}, std::pair{1, 2}, std::pair{2, 1}}) {
    Settings gs{std::string(16, 'p')}, os{std::string(16, 'p')};
    gs.protocol = go_pv;
    os.protocol = our_pv;
    std::string sfx = std::to_string(i++);
    int g = add_go("go-k" + sfx, gs);
    Node* n = add_ours("ours-k" + sfx, os);
    ASSERT_TRUE(g >= 0 && n);
    core::Status st;
    EXPECT_EQ(n->join({go_addr[g]}, st), 1) << "protocol " << go_pv << "/" << our_pv << ": " << st.message;
    EXPECT_TRUE(eventually([&] { return n->num_members() == 2 && gos[g]->members().size() == 2; }))
        << "protocol " << go_pv << "/" << our_pv;
  }
  ours.clear();
  gos.clear();
  go_addr.clear();

  int g = add_go("go-w", {std::string(16, 'x')});
  Node* n = add_ours("ours-w", {std::string(16, 'y')});
  ASSERT_TRUE(g >= 0 && n);
  core::Status st;
  EXPECT_EQ(n->join({go_addr[g]}, st), 0);
  EXPECT_FALSE(st.ok());
  auto [joined, err] = go_join(g, addr(*n));
  EXPECT_EQ(joined, 0);
  EXPECT_NE(err, "");
  EXPECT_EQ(n->num_members(), 1u);
  EXPECT_EQ(gos[g]->members().size(), 1u);
}

// A key rotation across the mixed cluster (add the new key everywhere, make it primary
// everywhere, remove the old one) loses no member; afterwards a node that has only the new
// key joins, one with only the old key cannot.
TEST_F(Interop, KeyRotationAcrossTheMixedClusterLosesNoMember) {
  const std::string a(32, 'A'), b(16, 'B');
  Settings s{a};
  int g0 = add_go("go-0", s), g1 = add_go("go-1", s);
  Node* n0 = add_ours("ours-0", s);
  Node* n1 = add_ours("ours-1", s);
  ASSERT_TRUE(g0 >= 0 && g1 >= 0 && n0 && n1);
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_EQ(go_join(g1, addr(*n0)).first, 1);
  EXPECT_EQ(n1->join({go_addr[g1]}, st), 1) << st.message;
  const std::vector<std::string> all{"go-0", "go-1", "ours-0", "ours-1"};
  ASSERT_TRUE(eventually([&] { return agree(all); }));
  auto go_key = [&](int g, const char* cmd, const std::string& k) {
    auto ev = gos[g]->call(cmd, "\"data\":" + quote(k), "key_done");
    return ev && GoPeer::get(*ev, "err").empty();
  };
  const core::Bytes ka(a.begin(), a.end()), kb(b.begin(), b.end());
  for (int g : {g0, g1}) EXPECT_TRUE(go_key(g, "key_add", b));
  for (auto& n : ours) EXPECT_TRUE(n->keyring_add(kb).ok());
  EXPECT_TRUE(eventually([&] { return agree(all); }));
  for (int g : {g0, g1}) EXPECT_TRUE(go_key(g, "key_use", b));
  for (auto& n : ours) EXPECT_TRUE(n->keyring_use(kb).ok());
  EXPECT_TRUE(eventually([&] { return agree(all); }));
  for (int g : {g0, g1}) EXPECT_TRUE(go_key(g, "key_remove", a));
  for (auto& n : ours) EXPECT_TRUE(n->keyring_remove(ka).ok());
  // Traffic under the new key only keeps everyone (probes, gossip and push/pulls run on).
  EXPECT_TRUE(eventually([&] { return n0->stats().probes > 20 && agree(all); }));
  for (auto& d : ours_d) {
    std::lock_guard<std::mutex> l(d->mu);
    for (const auto& e : d->events) EXPECT_NE(e.type, EventType::Leave) << e.node.name;
  }
  for (int g : {g0, g1}) EXPECT_FALSE(gos[g]->saw([](const Event& e) { return GoPeer::get(e, "ev") == "leave"; }));
  // Only the new key opens the door now.
  Node* late = add_ours("ours-late", Settings{b});
  ASSERT_TRUE(late);
  EXPECT_EQ(late->join({go_addr[g0]}, st), 1) << st.message;
  Node* stale = add_ours("ours-stale", Settings{a});
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->join({go_addr[g0]}, st), 0);
}

// Protocol and delegate version ranges: overlapping ranges join; a Go node whose delegate
// range does not overlap ours is refused both ways, with an error naming the versions.
TEST_F(Interop, DelegateVersionRanges) {
  Settings ours_v;
  ours_v.dmin = 1, ours_v.dmax = 3, ours_v.dcur = 2;
  Settings go_ok;
  go_ok.dmin = 2, go_ok.dmax = 4, go_ok.dcur = 2;
  int g0 = add_go("go-0", go_ok);
  Node* n0 = add_ours("ours-0", ours_v);
  ASSERT_TRUE(g0 >= 0 && n0);
  core::Status st;
  EXPECT_EQ(n0->join({go_addr[g0]}, st), 1) << st.message;
  EXPECT_TRUE(eventually([&] { return agree({"go-0", "ours-0"}); }));

  Settings go_bad;
  go_bad.dmin = 4, go_bad.dmax = 5, go_bad.dcur = 4;
  int g1 = add_go("go-1", go_bad);
  Node* n1 = add_ours("ours-1", ours_v);
  ASSERT_TRUE(g1 >= 0 && n1);
  EXPECT_EQ(n1->join({go_addr[g1]}, st), 0);
  EXPECT_NE(st.message.find("incompatible"), std::string::npos) << st.message;
  auto [joined, err] = go_join(g1, addr(*n1));
  EXPECT_EQ(joined, 0);
  EXPECT_NE(err, "");
  EXPECT_EQ(n1->num_members(), 1u);
  EXPECT_EQ(gos[g1]->members().size(), 1u);
}

// 3 Go nodes and 3 of ours: converge, agree, and all see a crash of each kind.
TEST_F(Interop, ThreeGoAndThreeOursConvergeAndDetectCrashes) {
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    ASSERT_GE(add_go("go-" + std::to_string(i), {}, "g" + std::to_string(i)), 0);
    ASSERT_TRUE(add_ours("ours-" + std::to_string(i), {}, "o" + std::to_string(i)));
    names.push_back("go-" + std::to_string(i));
    names.push_back("ours-" + std::to_string(i));
  }
  core::Status st;
  // Alternate seeds: ours join Go's seed, Go nodes join our seed.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ours[i]->join({go_addr[0]}, st), 1) << st.message;
    if (i > 0) {
      EXPECT_EQ(go_join(i, addr(*ours[0])).first, 1);
    }
  }
  ASSERT_TRUE(eventually([&] { return agree(names); }, 90s));

  gos[2]->send("crash", "");
  gos[2]->reap(10s);
  ours[2].reset();
  EXPECT_TRUE(eventually([&] {
    return ours_d[0]->saw(EventType::Leave, "go-2", NodeState::Dead) &&
           ours_d[1]->saw(EventType::Leave, "go-2", NodeState::Dead) && go_saw(0, "leave", "ours-2", "2") &&
           go_saw(1, "leave", "ours-2", "2");
  }, 90s));
  ours.erase(ours.begin() + 2);
  EXPECT_TRUE(eventually([&] { return agree({"go-0", "go-1", "ours-0", "ours-1"}); }, 90s));
}

// Converge and detect times of a cluster of `go_n` Go nodes and `ours_n` of ours (for the
// benchmark; printed as "[interop-bench]" lines, never asserted): every node joins the first
// one, all agree on every member, incarnation and metadata; then the last Go node and the
// last of ours (or the last two of one kind) crash at once, and every survivor sees both dead.
struct ClusterTimes {
  double converge_s = -1, detect_s = -1;
};

class InteropCluster : public Interop {
 protected:
  ClusterTimes run_cluster(int go_n, int ours_n) {
    using Clock = std::chrono::steady_clock;
    ClusterTimes t;
    std::vector<std::string> names;
    for (int i = 0; i < std::max(go_n, ours_n); ++i) {
      if (i < go_n) {
        EXPECT_GE(add_go("go-" + std::to_string(i), {}, "g" + std::to_string(i)), 0);
        names.push_back("go-" + std::to_string(i));
      }
      if (i < ours_n) {
        EXPECT_TRUE(add_ours("ours-" + std::to_string(i), {}, "o" + std::to_string(i)));
        names.push_back("ours-" + std::to_string(i));
      }
    }
    if (static_cast<int>(gos.size() + ours.size()) != go_n + ours_n) return t;
    const std::string seed = go_n > 0 ? go_addr[0] : addr(*ours[0]);
    const auto t0 = Clock::now();
    core::Status st;
    for (int i = 0; i < ours_n; ++i) {
      if (go_n == 0 && i == 0) continue;
      EXPECT_EQ(ours[i]->join({seed}, st), 1) << st.message;
    }
    for (int i = 1; i < go_n; ++i) EXPECT_EQ(go_join(i, seed).first, 1);
    if (!eventually([&] { return agree(names); }, 120s)) return t;
    t.converge_s = std::chrono::duration<double>(Clock::now() - t0).count();

    // Two crashes at once: one of each kind when both are there.
    std::vector<std::string> crashed;
    const auto t1 = Clock::now();
    for (int k = 0; k < 2; ++k) {
      const bool go_side = ours_n == 0 || (go_n > 0 && k == 0);
      if (go_side) {
        int g = go_n - 1 - (ours_n == 0 ? k : 0);
        crashed.push_back("go-" + std::to_string(g));
        gos[g]->send("crash", "");
      } else {
        int o = ours_n - 1 - (go_n == 0 ? k : 0);
        crashed.push_back("ours-" + std::to_string(o));
        ours[o]->shutdown();
      }
    }
    auto survivor = [&](const std::string& name) {
      return std::find(crashed.begin(), crashed.end(), name) == crashed.end();
    };
    const bool detected = eventually([&] {
      for (int i = 0; i < ours_n; ++i) {
        if (!survivor("ours-" + std::to_string(i))) continue;
        for (const auto& c : crashed)
          if (!ours_d[i]->saw(EventType::Leave, c, NodeState::Dead)) return false;
      }
      for (int g = 0; g < go_n; ++g) {
        if (!survivor("go-" + std::to_string(g))) continue;
        for (const auto& c : crashed)
          if (!go_saw(g, "leave", c, "2")) return false;
      }
      return true;
    }, 120s);
    if (detected) t.detect_s = std::chrono::duration<double>(Clock::now() - t1).count();
    std::printf("[interop-bench] %d Go + %d ours: converge %.2f s, detect 2 crashes %.2f s\n", go_n, ours_n,
                t.converge_s, t.detect_s);
    RecordProperty("converge_s", std::to_string(t.converge_s));
    RecordProperty("detect_s", std::to_string(t.detect_s));
    return t;
  }
};

// The larger mixed cluster of the issue: 8 Go nodes and 8 of ours converge (all agree on
// every member, incarnation and metadata) and detect a crash of each kind.
TEST_F(InteropCluster, EightGoAndEightOursConvergeAndDetectCrashes) {
  auto t = run_cluster(8, 8);
  EXPECT_GE(t.converge_s, 0) << "no convergence";
  EXPECT_GE(t.detect_s, 0) << "crashes not detected";
}

// The baselines the benchmark puts beside it (docs/benchmarks.md): 16 Go nodes, and 16 of
// ours in hashicorp mode, with the same timers.
TEST_F(InteropCluster, SixteenGoConvergeAndDetectCrashes) {
  auto t = run_cluster(16, 0);
  EXPECT_GE(t.converge_s, 0) << "no convergence";
  EXPECT_GE(t.detect_s, 0) << "crashes not detected";
}

TEST_F(InteropCluster, SixteenOursConvergeAndDetectCrashes) {
  auto t = run_cluster(0, 16);
  EXPECT_GE(t.converge_s, 0) << "no convergence";
  EXPECT_GE(t.detect_s, 0) << "crashes not detected";
}

#ifdef ML_AGENT
// The README's example: `memberlist-agent agent --wire hashicorp --join <go node>` joins a
// Go node, and leaves it gracefully on SIGTERM.
TEST_F(Interop, AgentJoinsAGoNode) {
  int g0 = add_go("go-0");
  ASSERT_GE(g0, 0);
  std::string log = log_path("agent");
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(ML_AGENT, ML_AGENT, "agent", "--name", "agent-1", "--bind", "127.0.0.1:0", "--preset", "local", "--wire",
          "hashicorp", "--join", go_addr[g0].c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  bool joined = eventually([&] { return go_saw(g0, "join", "agent-1"); });
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(joined);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "agent log: " << log;
  EXPECT_TRUE(eventually([&] { return go_saw(g0, "leave", "agent-1", "3"); }));  // StateLeft
}
#endif

}  // namespace
}  // namespace memberlist::interop
