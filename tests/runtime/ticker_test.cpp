// The runtime's Ticker: the shared timer (never early, replaced and removed deadlines, one
// wake-up serving several nodes) and the shared socket readiness (watch/unwatch).
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/strand.hpp>

#include "runtime/runtime_impl.h"
#include "helpers.h"

namespace memberlist::runtime::test {
namespace {

using Clock = Ticker::Clock;

// One registration with a recorder of its firings (times, and the thread it ran on).
struct Probe {
  std::shared_ptr<int> owner = std::make_shared<int>(0);
  Ticker::Entry entry;
  std::mutex mu;
  std::vector<Clock::time_point> fired;
  std::thread::id thread;
  std::atomic<int> reads{0};

  Probe() {
    entry.owner = owner;
    entry.fire = [this] {
      std::lock_guard<std::mutex> l(mu);
      fired.push_back(Clock::now());
      thread = std::this_thread::get_id();
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> l(mu);
    return fired.size();
  }
};

TEST(Ticker, FiresNeverEarlyAndOnlyTheLatestDeadline) {
  Ticker t;
  Probe a, b;
  auto now = Clock::now();
  auto da = now + 30ms;
  t.set(a.entry, now + 5s);  // replaced below: must not fire at 5 s, nor twice
  t.set(a.entry, da);
  auto db = now + 60ms;
  t.set(b.entry, db);
  ASSERT_TRUE(eventually([&] { return a.count() == 1 && b.count() == 1; }));
  std::lock_guard<std::mutex> la(a.mu), lb(b.mu);
  EXPECT_GE(a.fired[0], da);
  EXPECT_GE(b.fired[0], db);
  // Both ran on the ticker's own thread.
  EXPECT_EQ(a.thread, b.thread);
  EXPECT_NE(a.thread, std::this_thread::get_id());
}

TEST(Ticker, RemovedDeadlineDoesNotFire) {
  Ticker t;
  Probe removed, barrier;
  auto now = Clock::now();
  t.set(removed.entry, now + 20ms);
  t.set(removed.entry, std::nullopt);
  t.set(barrier.entry, now + 80ms);  // deadlines fire in order: once it has, the other would have
  ASSERT_TRUE(eventually([&] { return barrier.count() == 1; }));
  EXPECT_EQ(removed.count(), 0u);
}

TEST(Ticker, DeadlinesAreRoundedUpToTheGrid) {
  Ticker t;
  std::vector<std::unique_ptr<Probe>> probes;
  // All in one slot: each fires at the grid point after it, never before.
  auto slot = std::chrono::ceil<std::chrono::milliseconds>(Clock::now().time_since_epoch() + 200ms);
  auto base = Clock::time_point(slot - slot % Ticker::kMinSlack + Ticker::kMinSlack);
  for (int i = 0; i < 20; ++i) {
    probes.push_back(std::make_unique<Probe>());
    t.set(probes.back()->entry, base - std::chrono::microseconds(i * 100 + 1));
  }
  ASSERT_TRUE(eventually([&] {
    for (auto& p : probes)
      if (p->count() != 1) return false;
    return true;
  }));
  for (auto& p : probes) {
    std::lock_guard<std::mutex> l(p->mu);
    EXPECT_GE(p->fired[0], base);  // rounded up to the slot, never early
  }
}

// Exact deadlines (timeouts, gossip rounds) fire at most 5 ms late. Lax ones (the periodic
// ticks) up to 200 ms, sharing their slot with other nodes' ticks, but only as coarse as a
// slot holding about 8 of the ticker's nodes' ticks (one tick a second each) needs. Never
// early.
TEST(Ticker, LaxDeadlinesShareACoarserGridTheMoreSoTheFewerNodes) {
  using std::chrono::milliseconds;
  const auto when = Clock::time_point(std::chrono::seconds(1000)) + std::chrono::microseconds(1234);
  auto check = [&](Clock::time_point s, Clock::duration step, const std::string& what) {
    EXPECT_GE(s, when) << what;
    EXPECT_LT(s - when, step) << what;
    EXPECT_EQ(s.time_since_epoch() % step, Clock::duration::zero()) << what;
  };
  check(Ticker::exact_slot(when), milliseconds(5), "exact");
  struct Case {
    size_t nodes;
    Clock::duration step;
  };
  for (auto [nodes, step] : {Case{0, milliseconds(200)}, Case{1, milliseconds(200)}, Case{40, milliseconds(200)},
                             Case{41, milliseconds(100)}, Case{80, milliseconds(100)}, Case{81, milliseconds(50)},
                             Case{160, milliseconds(50)}, Case{161, milliseconds(20)}, Case{400, milliseconds(20)},
                             Case{401, milliseconds(10)}, Case{800, milliseconds(10)}, Case{801, milliseconds(5)},
                             Case{5000, milliseconds(5)}})
    check(Ticker::lax_slot(when, nodes), step, "lax, nodes " + std::to_string(nodes));
  // A deadline on the grid stays where it is.
  auto on_grid = Clock::time_point(std::chrono::seconds(2000));
  EXPECT_EQ(Ticker::lax_slot(on_grid, 8), on_grid);
  EXPECT_EQ(Ticker::exact_slot(on_grid), on_grid);
}

// A node registers its earliest deadline (maybe a lax tick) and its earliest exact one: it
// fires in the earlier slot, so a lax tick never holds back a timeout behind it, and an
// exact deadline ahead of a tick keeps its fine grid.
TEST(Ticker, EntryFiresInTheEarlierOfItsExactAndLaxSlots) {
  using std::chrono::milliseconds;
  const auto tick = Clock::time_point(std::chrono::seconds(1000)) + milliseconds(1);  // lax slot: +199 ms
  EXPECT_EQ(Ticker::slot(tick + milliseconds(7), tick, 1), tick + milliseconds(9));      // the exact one's
  EXPECT_EQ(Ticker::slot(tick + milliseconds(270), tick, 1), tick + milliseconds(199));  // the tick's
  EXPECT_EQ(Ticker::slot(std::nullopt, tick, 1), tick + milliseconds(199));
  EXPECT_EQ(Ticker::slot(tick + milliseconds(7), std::nullopt, 1), tick + milliseconds(9));
  EXPECT_EQ(Ticker::slot(std::nullopt, std::nullopt, 1), std::nullopt);
  // And the ticker uses it: an exact deadline set behind a later-slotted tick fires.
  Ticker t;
  Probe p;
  auto now = Clock::now();
  t.set(p.entry, now + milliseconds(30), now + milliseconds(20));
  ASSERT_TRUE(eventually([&] { return p.count() == 1; }));
  std::lock_guard<std::mutex> l(p.mu);
  EXPECT_GE(p.fired[0], now + milliseconds(20));
}

TEST(Ticker, ExpiredOwnerIsSkipped) {
  Ticker t;
  Probe gone, barrier;
  t.set(gone.entry, Clock::now() + 20ms);
  gone.owner.reset();  // the node is being destroyed
  t.set(barrier.entry, Clock::now() + 80ms);
  ASSERT_TRUE(eventually([&] { return barrier.count() == 1; }));
  EXPECT_EQ(gone.count(), 0u);
}

TEST(Ticker, WatchedSocketIsReadUntilUnwatched) {
  Ticker t;
  boost::asio::io_context ioc;
  using boost::asio::ip::udp;
  udp::socket rx(ioc, udp::endpoint(udp::v4(), 0)), tx(ioc, udp::endpoint(udp::v4(), 0));
  rx.non_blocking(true);
  udp::endpoint to(boost::asio::ip::make_address("127.0.0.1"), rx.local_endpoint().port());
  Probe p;
  std::atomic<int> datagrams{0};
  p.entry.readable = [&] {
    char buf[64];
    while (::recv(rx.native_handle(), buf, sizeof buf, MSG_DONTWAIT) > 0) ++datagrams;
  };
  ASSERT_TRUE(t.watch(p.entry, rx.native_handle()));
  tx.send_to(boost::asio::buffer("one", 3), to);
  ASSERT_TRUE(eventually([&] { return datagrams.load() == 1; }));
  tx.send_to(boost::asio::buffer("two", 3), to);
  ASSERT_TRUE(eventually([&] { return datagrams.load() == 2; }));
  t.unwatch(p.entry, rx.native_handle());
  tx.send_to(boost::asio::buffer("three", 5), to);
  // A timer entry as a barrier: the ticker has made a pass after the datagram arrived.
  Probe barrier;
  t.set(barrier.entry, Clock::now() + 50ms);
  ASSERT_TRUE(eventually([&] { return barrier.count() == 1; }));
  EXPECT_EQ(datagrams.load(), 2);
  char buf[64];
  EXPECT_EQ(::recv(rx.native_handle(), buf, sizeof buf, MSG_DONTWAIT), 5);  // still queued
}

// A runtime has one ticker (and thread) per pool thread. A few nodes share the first one
// (a probe between them wakes one thread); beyond nodes_per_ticker they are spread, so that
// the UDP path and the timers of many nodes use every core; nodes on different tickers
// still form one cluster.
TEST(Ticker, RuntimeFillsOneTickerThenSpreadsItsNodes) {
  auto names = [](const char* prefix, int i) {
    std::string name = prefix;  // (appended: "shard" + std::string trips GCC 12's -Wrestrict)
    name += std::to_string(i);
    return name;
  };
  {
    auto rt = std::make_shared<Runtime>(2);
    std::vector<std::shared_ptr<Node>> few;
    for (int i = 0; i < 3; ++i) few.push_back(make_node(rt, fast_options(names("few", i))));
    EXPECT_EQ(rt->impl().tickers[0]->watched(), 3u);
    EXPECT_EQ(rt->impl().tickers[1]->watched(), 0u);
  }
  auto rt = std::make_shared<Runtime>(2, 1);  // one node per ticker, then the least loaded
  auto& tickers = rt->impl().tickers;
  ASSERT_EQ(tickers.size(), 2u);
  std::vector<std::shared_ptr<Node>> nodes;
  for (int i = 0; i < 4; ++i) nodes.push_back(make_node(rt, fast_options(names("shard", i))));
  EXPECT_EQ(tickers[0]->watched(), 2u);
  EXPECT_EQ(tickers[1]->watched(), 2u);
  EXPECT_NE(tickers[0].get(), tickers[1].get());
  std::vector<std::string> seed{addr_of(*nodes[0])};
  for (int i = 1; i < 4; ++i) {
    Status st;
    ASSERT_EQ(nodes[static_cast<size_t>(i)]->join(seed, st), 1) << st.message;
  }
  ASSERT_TRUE(eventually([&] {
    for (auto& n : nodes)
      if (n->members().size() != 4) return false;
    return true;
  }));
  nodes.clear();  // every socket is unwatched again
  EXPECT_EQ(tickers[0]->watched() + tickers[1]->watched(), 0u);
}

// Sets a flag of the test's when the io_context it was added to is destroyed (~io_context
// shuts its services down first).
struct GoneFlag : boost::asio::execution_context::service {
  using key_type = GoneFlag;
  static inline boost::asio::execution_context::id id;
  explicit GoneFlag(boost::asio::execution_context& ctx) : service(ctx) {}
  std::atomic<bool>* gone = nullptr;
  void shutdown() override { gone->store(true); }
};

// A ticker's thread holds a reference to each node it is running until its batch is done,
// so it may drop a node's last one after the node and the runtime were released. The node's
// State has strands on the runtime's io_contexts: the runtime must stop its tickers before
// destroying those (it used to destroy the callback io_context first, and ThreadSanitizer
// saw the State's strand lock the destroyed context's mutex).
TEST(Ticker, RuntimeStopsItsTickersBeforeDestroyingItsIoContexts) {
  std::atomic<bool> cb_gone{false}, fired{false}, owner_dead{false}, died_after_cb{false};
  struct Owner {  // stands for a node's State
    boost::asio::strand<boost::asio::io_context::executor_type> cbx;
    std::atomic<bool>* cb_gone;
    std::atomic<bool>* dead;
    std::atomic<bool>* late;
    ~Owner() {
      late->store(cb_gone->load());
      dead->store(true);
    }
  };
  Ticker::Entry entry;  // outlives the runtime, as a State's entry outlives its ticker's pass
  auto rt = std::make_shared<Runtime>(1);
  auto& cb_ioc = *rt->impl().cb_ioc;
  boost::asio::use_service<GoneFlag>(cb_ioc).gone = &cb_gone;
  auto owner = std::make_shared<Owner>(Owner{boost::asio::make_strand(cb_ioc), &cb_gone, &owner_dead, &died_after_cb});
  entry.owner = owner;
  entry.fire = [&] {
    fired = true;
    // Keep the ticker in its batch until the callback io_context is gone (the bug) or for
    // a second (the runtime waits for this thread before it destroys anything).
    auto limit = Clock::now() + 1s;
    while (!cb_gone && Clock::now() < limit) std::this_thread::sleep_for(1ms);
  };
  rt->impl().tickers[0]->set(entry, Clock::now());
  ASSERT_TRUE(eventually([&] { return fired.load(); }));
  owner.reset();  // the ticker's batch holds the last reference now
  rt.reset();
  EXPECT_TRUE(owner_dead.load());
  EXPECT_FALSE(died_after_cb.load()) << "the owner outlived the runtime's callback io_context";
}

}  // namespace
}  // namespace memberlist::runtime::test
