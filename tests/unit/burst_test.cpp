// The post-join push/pull burst (Config::post_join_push_pulls): one core driven by hand,
// its stream requests observed as they come out.
#include <gtest/gtest.h>

#include "harness.h"

namespace memberlist::test {
namespace {

using namespace core;

constexpr Vsn kVsn{1, 5, 2, 0, 0, 0};

// "n<i>" (built piecewise: GCC 12 warns falsely on nm(i)).
std::string nm(int i) {
  std::string s = "n";
  s += std::to_string(i);
  return s;
}

struct Exchange {
  Instant at;
  Address to;
  bool join;
};

class BurstTest : public ::testing::Test {
 protected:
  std::shared_ptr<TestCodec> codec = std::make_shared<TestCodec>();
  Instant now{};
  std::unique_ptr<Core> a;

  void start(int knob, uint64_t seed = 7) {
    Config cfg = test_config("a", 1, seed);
    cfg.post_join_push_pulls = knob;
    cfg.probe_interval = 0s;  // no probes: only push/pulls open streams
    cfg.reconnect_interval = 0s;  // nor re-joins of a seed while alone (reconnect_test.cpp)
    a = std::make_unique<Core>(cfg, codec, now);
  }

  // A successful join through `seed_index`, whose reply lists a, the seed and `others`.
  Status join(int seed_index, const std::vector<int>& others) {
    uint64_t id = a->join(addr_of(seed_index), now);
    auto req = a->poll_stream();
    EXPECT_TRUE(req && req->id == id);
    PushPull reply;
    reply.join = true;
    reply.nodes.push_back({nm(seed_index), addr_of(seed_index), {}, 1, NodeState::Alive, kVsn});
    for (int i : others) reply.nodes.push_back({nm(i), addr_of(i), {}, 1, NodeState::Alive, kVsn});
    return a->handle_stream_response(id, Status::success(), codec->encode(reply), now);
  }

  // Runs timers until `until`, answering nothing; returns every push/pull opened.
  std::vector<Exchange> run(Instant until) {
    std::vector<Exchange> out;
    while (auto next = a->poll_timeout()) {
      if (*next > until) break;
      now = *next;
      a->handle_timeout(now);
      while (auto req = a->poll_stream()) {
        auto msgs = codec->decode_all(req->payload);
        if (msgs.size() == 1 && std::holds_alternative<PushPull>(msgs[0]))
          out.push_back({now, req->to, std::get<PushPull>(msgs[0]).join});
      }
      while (a->poll_transmit()) {
      }
    }
    now = until;
    return out;
  }
};

TEST(BurstConfig, DefaultRangeAndValidation) {
  Config c = Config::lan();
  c.name = "x";
  EXPECT_EQ(c.post_join_push_pulls, 3);
  EXPECT_EQ(Config::local().post_join_push_pulls, 3);
  EXPECT_EQ(Config::wan().post_join_push_pulls, 3);
  EXPECT_TRUE(c.validate().ok());
  c.post_join_push_pulls = 0;
  EXPECT_TRUE(c.validate().ok());
  c.post_join_push_pulls = kMaxPostJoinPushPulls;
  EXPECT_TRUE(c.validate().ok());
  c.post_join_push_pulls = kMaxPostJoinPushPulls + 1;
  Status s = c.validate();
  EXPECT_EQ(s.code, Errc::invalid);
  EXPECT_NE(s.message.find("post_join_push_pulls"), std::string::npos);
  c.post_join_push_pulls = -1;
  EXPECT_FALSE(c.validate().ok());
}

TEST_F(BurstTest, ThreeExchangesAtTwoFourEightGossipIntervals) {
  start(3);
  const Duration g = 100ms;  // Local preset
  const Instant joined = now;
  ASSERT_TRUE(join(2, {3, 4, 5}).ok());
  // Before the first periodic push/pull (stagger + 15 s): only the burst.
  auto ex = run(joined + 14s);
  ASSERT_EQ(ex.size(), 3u);
  const Duration centre[] = {2 * g, 4 * g, 8 * g};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GE(ex[i].at - joined, centre[i] - g / 2) << i;
    EXPECT_LE(ex[i].at - joined, centre[i] + g / 2) << i;
    EXPECT_FALSE(ex[i].join) << "burst exchanges are periodic ones (join=false)";
    EXPECT_NE(ex[i].to, addr_of(1)) << "never ourselves";
  }
}

TEST_F(BurstTest, KnobZeroIsTheReferenceSchedule) {
  start(0);
  const Instant joined = now;
  ASSERT_TRUE(join(2, {3, 4, 5}).ok());
  // The reference waits a random stagger plus a whole interval (15 s) before its first
  // periodic push/pull, and never exchanges right after a join.
  EXPECT_TRUE(run(joined + 15s - 1ms).empty());
  auto ex = run(joined + 30s);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_FALSE(ex[0].join);
}

TEST_F(BurstTest, FailedJoinStartsNoBurst) {
  start(3);
  uint64_t id = a->join(addr_of(2), now);
  ASSERT_TRUE(a->poll_stream());
  EXPECT_FALSE(a->handle_stream_response(id, Status::error(Errc::timeout, "i/o timeout"), {}, now).ok());
  EXPECT_TRUE(run(now + 14s).empty());
}

TEST_F(BurstTest, NobodyElseKnownSkipsTheExchange) {
  start(3);
  // The seed answers with nothing but ourselves; the seed itself is known only by address.
  uint64_t id = a->join(addr_of(2), now);
  ASSERT_TRUE(a->poll_stream());
  PushPull reply;
  reply.join = true;
  ASSERT_TRUE(a->handle_stream_response(id, Status::success(), codec->encode(reply), now).ok());
  EXPECT_TRUE(run(now + 14s).empty());
}

TEST_F(BurstTest, LaterJoinRestartsTheBurst) {
  start(3);
  const Duration g = 100ms;
  ASSERT_TRUE(join(2, {3}).ok());
  auto first = run(now + 2 * g + g / 2);  // the first exchange of the first burst
  ASSERT_EQ(first.size(), 1u);
  const Instant rejoined = now;
  ASSERT_TRUE(join(4, {5}).ok());
  // The rest of the first burst is cancelled: three more exchanges, timed from the rejoin.
  auto ex = run(rejoined + 14s);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_GE(ex[0].at - rejoined, 2 * g - g / 2);
  EXPECT_LE(ex[2].at - rejoined, 8 * g + g / 2);
}

TEST_F(BurstTest, NeedsPushPullEnabled) {
  Config cfg = test_config("a", 1, 7);
  cfg.probe_interval = 0s;
  cfg.push_pull_interval = 0s;
  a = std::make_unique<Core>(cfg, codec, now);
  ASSERT_TRUE(join(2, {3}).ok());
  EXPECT_TRUE(run(now + 60s).empty());
}

TEST(BurstCluster, SimultaneousJoinersConvergeBeforeAnyPeriodicPushPull) {
  // Eight nodes join n1 at the same instant; gossip alone leaves some pairs unknown in
  // many seeds (the reference's plateau); the burst repairs them within 10 gossip
  // intervals in every seed tried here.
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Cluster c;
    for (int i = 1; i <= 8; ++i) c.add(test_config(nm(i), i, seed));
    for (int i = 2; i <= 8; ++i) c.join(nm(i), "n1");
    std::set<std::string> all;
    for (int i = 1; i <= 8; ++i) all.insert(nm(i));
    bool ok = c.run_until_pred(
        [&] {
          for (const auto& o : all)
            if (c.alive_view(o) != all) return false;
          return true;
        },
        1s);
    EXPECT_TRUE(ok) << "seed " << seed;
  }
}

}  // namespace
}  // namespace memberlist::test
