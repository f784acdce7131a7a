// TransmitLimitedQueue: ordering, byte limit, retransmit limit, named replacement, prune, reset.
#include <gtest/gtest.h>

#include "core/queue.h"

namespace memberlist::core {
namespace {

Bytes msg(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

std::vector<std::string> strs(const std::vector<Bytes>& v) {
  std::vector<std::string> out;
  for (const auto& b : v) out.push_back(str(b));
  return out;
}

TEST(Queue, OrderingLargestThenNewestWithinTier) {
  TransmitLimitedQueue q(3);
  q.queue(msg("aa"));
  q.queue(msg("b"));
  q.queue(msg("cc"));
  q.queue(msg("dddd"));
  // All at 0 transmits: size desc, then newest first.
  EXPECT_EQ(strs(q.get_broadcasts(0, 100, 10)), (std::vector<std::string>{"dddd", "cc", "aa", "b"}));
}

TEST(Queue, LeastTransmittedFirst) {
  TransmitLimitedQueue q(3);
  q.queue(msg("old-and-long"));
  // Send it once, then add a shorter fresh one: the fresh one (0 transmits) goes first.
  EXPECT_EQ(q.get_broadcasts(0, 100, 10).size(), 1u);
  q.queue(msg("new"));
  EXPECT_EQ(strs(q.get_broadcasts(0, 100, 10)), (std::vector<std::string>{"new", "old-and-long"}));
}

TEST(Queue, ByteLimitWithOverhead) {
  TransmitLimitedQueue q(3);
  q.queue(msg("1234567890"));  // 10
  q.queue(msg("12345"));       // 5
  q.queue(msg("123"));         // 3
  // limit 20, overhead 2 per message: 10+2 = 12, then 5+2 = 19, then 3 does not fit.
  EXPECT_EQ(strs(q.get_broadcasts(2, 20, 10)), (std::vector<std::string>{"1234567890", "12345"}));
  // Nothing fits in a tiny budget.
  EXPECT_TRUE(q.get_broadcasts(2, 4, 10).empty());
  // The 3-byte one (never sent, lowest tier) is first next time.
  EXPECT_EQ(str(q.get_broadcasts(2, 5, 10).at(0)), "123");
}

TEST(Queue, RetransmitLimitThenFinished) {
  TransmitLimitedQueue q(2);
  int finished = 0;
  q.queue(msg("x"), {}, [&] { finished++; });
  // n = 9 nodes: limit = 2 * ceil(log10(10)) = 2 transmissions.
  EXPECT_EQ(q.get_broadcasts(0, 100, 9).size(), 1u);
  EXPECT_EQ(finished, 0);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.get_broadcasts(0, 100, 9).size(), 1u);
  EXPECT_EQ(finished, 1);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.get_broadcasts(0, 100, 9).empty());
}

TEST(Queue, ZeroNodesSendsOnce) {
  TransmitLimitedQueue q(4);
  q.queue(msg("x"));
  EXPECT_EQ(q.get_broadcasts(0, 100, 0).size(), 1u);
  EXPECT_EQ(q.size(), 0u);
}

TEST(Queue, NamedReplacesAndRunsOldHook) {
  TransmitLimitedQueue q(3);
  std::vector<std::string> finished;
  q.queue(msg("alive n1"), "n1", [&] { finished.push_back("first"); });
  q.queue(msg("alive n2"), "n2", [&] { finished.push_back("other"); });
  q.queue(msg("dead n1"), "n1", [&] { finished.push_back("second"); });
  EXPECT_EQ(finished, std::vector<std::string>{"first"});
  EXPECT_EQ(q.size(), 2u);
  auto out = strs(q.get_broadcasts(0, 100, 10));
  EXPECT_EQ(out.size(), 2u);
  EXPECT_NE(std::find(out.begin(), out.end(), "dead n1"), out.end());
  EXPECT_EQ(std::find(out.begin(), out.end(), "alive n1"), out.end());
}

TEST(Queue, UniqueNeverReplaces) {
  TransmitLimitedQueue q(3);
  q.queue(msg("same"));
  q.queue(msg("same"));
  EXPECT_EQ(q.size(), 2u);
}

TEST(Queue, PruneDropsMostTransmittedFirst) {
  TransmitLimitedQueue q(10);
  std::vector<std::string> finished;
  q.queue(msg("sent-twice"), {}, [&] { finished.push_back("sent-twice"); });
  q.get_broadcasts(0, 100, 10);
  q.get_broadcasts(0, 100, 10);
  q.queue(msg("sent-once"), {}, [&] { finished.push_back("sent-once"); });
  q.get_broadcasts(0, 9, 10);  // only "sent-once" (9 bytes) fits, "sent-twice" is 10
  q.queue(msg("fresh"), {}, [&] { finished.push_back("fresh"); });
  q.prune(1);
  EXPECT_EQ(finished, (std::vector<std::string>{"sent-twice", "sent-once"}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(str(q.get_broadcasts(0, 100, 10).at(0)), "fresh");
}

TEST(Queue, ResetFinishesEverything) {
  TransmitLimitedQueue q(3);
  int finished = 0;
  q.queue(msg("a"), "a", [&] { finished++; });
  q.queue(msg("b"), {}, [&] { finished++; });
  q.reset();
  EXPECT_EQ(finished, 2);
  EXPECT_EQ(q.size(), 0u);
  // Names are forgotten too: a new "a" does not call anything.
  q.queue(msg("a2"), "a", [&] { finished += 10; });
  EXPECT_EQ(finished, 2);
}

}  // namespace
}  // namespace memberlist::core
