// Issue 13 item 7: the origins remembered for de-duplicating application broadcasts are
// bounded: by Config::max_broadcast_origins (least recently heard first) and by age
// (gossip_to_the_dead_time without a broadcast), and a live origin is still de-duplicated.
#include <gtest/gtest.h>

#include "harness.h"

namespace memberlist::test {
namespace {

using namespace core;

class SeenOriginsTest : public ::testing::Test {
 protected:
  void make(Config cfg) { a = std::make_unique<Core>(std::move(cfg), codec, now); }
  // A broadcast from `origin` (epoch 1) reaches a; returns how many it delivered.
  size_t hear(const std::string& origin, uint32_t seq, const std::string& name = "") {
    a->handle_packet(addr_of(9), codec->encode(UserBroadcast{origin, 1, seq, name, Bytes{'p'}}), now);
    size_t n = 0;
    while (auto x = a->poll_notification())
      if (std::holds_alternative<BroadcastReceived>(*x)) n++;
    return n;
  }
  double evicted(const char* reason) {
    return a->metrics().counter("memberlist.broadcast.origins_evicted", {{"reason", reason}});
  }

  std::shared_ptr<TestCodec> codec = std::make_shared<TestCodec>();
  Instant now{1000s};
  std::unique_ptr<Core> a;
};

TEST_F(SeenOriginsTest, ManyOriginsStayWithinTheLimitAndALiveOriginIsStillDeduplicated) {
  Config cfg = test_config("a", 1);
  cfg.max_broadcast_origins = 8;
  make(cfg);
  EXPECT_EQ(hear("live", 1), 1u);
  EXPECT_EQ(hear("live", 2, "cfg"), 1u);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(hear("o" + std::to_string(i), 1), 1u);
    EXPECT_LE(a->stats().broadcast_origins, 8u);
    // `live` keeps broadcasting, so it is never the least recently heard.
    if (i % 4 == 0) {
      EXPECT_EQ(hear("live", static_cast<uint32_t>(3 + i / 4)), 1u);
    }
    now += 1ms;
  }
  EXPECT_EQ(a->stats().broadcast_origins, 8u);
  EXPECT_EQ(evicted("limit"), 1000 + 1 - 8);
  // Its old broadcasts come back: none is delivered twice, the superseded name neither.
  EXPECT_EQ(hear("live", 1), 0u);
  EXPECT_EQ(hear("live", 2, "cfg"), 0u);
  EXPECT_EQ(hear("live", 100), 0u);
  EXPECT_EQ(hear("live", 1, "cfg"), 0u);
  // The last origins heard are remembered too; the first ones were evicted.
  EXPECT_EQ(hear("o999", 1), 0u);
  EXPECT_EQ(hear("o0", 1), 1u);  // evicted: delivered again (the cost of the limit)
}

TEST_F(SeenOriginsTest, IdleOriginsAreForgottenAfterGossipToTheDeadTime) {
  Config cfg = test_config("a", 1);
  cfg.max_repair_broadcasts = 0;  // with repair, origins are kept past its horizon (origin_memory)
  make(cfg);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(hear("o" + std::to_string(i), 1), 1u);
  EXPECT_EQ(a->stats().broadcast_origins, 100u);
  // Within gossip_to_the_dead_time nothing is forgotten: still de-duplicated.
  now += cfg.gossip_to_the_dead_time;
  EXPECT_EQ(hear("o0", 1), 0u);
  EXPECT_EQ(a->stats().broadcast_origins, 100u);
  EXPECT_EQ(evicted("idle"), 0);
  // Past it, the idle ones go (o0 was just heard again), without waiting for the limit.
  now += 1us;
  EXPECT_EQ(hear("new", 1), 1u);
  EXPECT_EQ(a->stats().broadcast_origins, 2u);
  EXPECT_EQ(evicted("idle"), 99);
  EXPECT_EQ(evicted("limit"), 0);
}

// Under the default limit, an ordinary cluster's origins within the de-duplication window
// are all remembered.
TEST_F(SeenOriginsTest, DefaultLimitEvictsNothingWithinTheWindow) {
  make(test_config("a", 1));
  for (int i = 0; i < 4096; ++i) hear("o" + std::to_string(i), 1);
  EXPECT_EQ(a->stats().broadcast_origins, 4096u);
  EXPECT_EQ(evicted("limit"), 0);
  EXPECT_EQ(hear("o0", 1), 0u);
}

// Issue 14 item 3: broadcasts invented by peers are forwarded, but the queue that holds them
// for gossip stays within max_queued_broadcasts / max_queued_broadcast_bytes.
TEST_F(SeenOriginsTest, ForwardedBroadcastsStayWithinTheQueueBounds) {
  Config cfg = test_config("a", 1);
  cfg.max_queued_broadcasts = 100;
  cfg.max_queued_broadcast_bytes = 1u << 20;
  make(cfg);
  for (uint32_t seq = 1; seq <= 5000; ++seq) hear("flooder", seq);
  EXPECT_EQ(a->num_queued_broadcasts(), 100u);
  EXPECT_EQ(a->metrics().counter("memberlist.user.broadcasts.dropped"), 4900);
  // The byte bound, with larger broadcasts.
  cfg.max_queued_broadcasts = 100000;
  cfg.max_queued_broadcast_bytes = 20000;
  make(cfg);
  for (uint32_t seq = 1; seq <= 1000; ++seq) {
    a->handle_packet(addr_of(9), codec->encode(UserBroadcast{"big", 1, seq, "", Bytes(500, 'x')}), now);
  }
  EXPECT_LE(a->num_queued_broadcasts() * 500, 20000u);
  EXPECT_GT(a->num_queued_broadcasts(), 30u);
}

}  // namespace
}  // namespace memberlist::test
