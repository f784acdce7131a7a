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

TEST(Queue, BytesAreTrackedAndPruneHoldsThemToo) {
  TransmitLimitedQueue q(10);
  q.queue(msg("aaaa"));
  q.queue(msg("bbbbbbbb"), "b");
  q.queue(msg("cc"));
  EXPECT_EQ(q.bytes(), 14u);
  q.queue(msg("bb"), "b");  // replaces the named one
  EXPECT_EQ(q.bytes(), 8u);
  q.get_broadcasts(0, 100, 10);  // transmitted once, still queued
  EXPECT_EQ(q.bytes(), 8u);
  q.queue(msg("dddd"));
  // 12 bytes: the transmitted ones go first (smallest, then oldest, first among them) until
  // 6 bytes or less remain: cc, bb, then aaaa.
  EXPECT_EQ(q.prune(10, 6), 3u);
  EXPECT_EQ(q.bytes(), 4u);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q.prune(10, 6), 0u);
  EXPECT_EQ(str(q.get_broadcasts(0, 100, 10).at(0)), "dddd");
  q.reset();
  EXPECT_EQ(q.bytes(), 0u);
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

TEST(Queue, DoneHooksAreToldWhy) {
  TransmitLimitedQueue q(1);  // n=9 -> 1 transmission
  std::vector<std::pair<std::string, FinishReason>> done;
  auto hook = [&](std::string what) { return [&done, what](FinishReason r) { done.emplace_back(what, r); }; };
  q.queue_named("k", msg("old"), hook("old"));
  q.queue_named("k", msg("new"), hook("new"));  // replaces "old"
  q.queue_unique(msg("u"), hook("u"));
  EXPECT_EQ(q.get_broadcasts(0, 100, 9).size(), 2u);  // "new" and "u", each sent once = done
  q.queue_unique(msg("pruned"), hook("pruned"));
  q.prune(0);
  q.queue_unique(msg("reset"), hook("reset"));
  q.reset();
  using R = FinishReason;
  EXPECT_EQ(done, (std::vector<std::pair<std::string, FinishReason>>{
                      {"old", R::Replaced}, {"new", R::Transmitted}, {"u", R::Transmitted},
                      {"pruned", R::Dropped}, {"reset", R::Dropped}}));
}

TEST(Queue, PlainBroadcastsInvalidateOnlyPlainOnes) {
  TransmitLimitedQueue q(3);
  std::vector<std::string> replaced;
  auto hook = [&](std::string what) {
    return [&replaced, what](FinishReason r) {
      if (r == FinishReason::Replaced) replaced.push_back(what);
    };
  };
  // Plain messages "key=value": a new one invalidates older ones with the same key.
  auto same_key = [](const std::string& m) {
    return [k = m.substr(0, m.find('='))](const Bytes& older) { return str(older).rfind(k + "=", 0) == 0; };
  };
  q.queue_plain(msg("a=1"), same_key("a=1"), hook("a=1"));
  q.queue_plain(msg("b=1"), same_key("b=1"), hook("b=1"));
  q.queue_named("a=named", msg("a=named"), hook("named"));
  q.queue_unique(msg("a=unique"), hook("unique"));
  q.queue_plain(msg("a=2"), same_key("a=2"), hook("a=2"));
  EXPECT_EQ(replaced, std::vector<std::string>{"a=1"});
  EXPECT_EQ(q.size(), 4u);
  // Without a predicate a plain broadcast replaces nothing.
  q.queue_plain(msg("a=3"), {}, hook("a=3"));
  EXPECT_EQ(q.size(), 5u);
}

TEST(Queue, NumNodesFromTheHost) {
  TransmitLimitedQueue q(1);
  q.queue_unique(msg("x"));
  q.set_num_nodes(99);  // retransmit limit 1 * ceil(log10(100)) = 2
  EXPECT_EQ(q.get_broadcasts(0, 100).size(), 1u);
  EXPECT_EQ(q.get_broadcasts(0, 100).size(), 1u);
  EXPECT_TRUE(q.get_broadcasts(0, 100).empty());
  size_t n = 999;  // limit 3, asked each time
  q.set_num_nodes([&n] { return n; });
  q.queue_unique(msg("y"));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.get_broadcasts(0, 100).size(), 1u) << i;
  EXPECT_TRUE(q.get_broadcasts(0, 100).empty());
  q.set_retransmit_mult(2);
  EXPECT_EQ(q.retransmit_mult(), 2);
}

TEST(Queue, HooksMayQueueIntoTheSameQueue) {
  TransmitLimitedQueue q(1);
  int chained = 0;
  std::function<void(FinishReason)> again = [&](FinishReason) {
    if (++chained < 3) q.queue_named("k", msg("next"), again);
  };
  q.queue_named("k", msg("first"), again);
  // Replaces "first", whose hook queues "next" (replacing "second"), whose hook queues
  // another "next" (replacing the first "next"); the last one is then transmitted.
  q.queue_named("k", msg("second"), again);
  EXPECT_EQ(chained, 3);
  EXPECT_EQ(q.size(), 1u);
  for (int i = 0; i < 5; ++i) q.get_broadcasts(0, 100, 9);
  EXPECT_EQ(chained, 4);
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace memberlist::core
