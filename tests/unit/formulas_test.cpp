// The reference's formula vectors (memberlist-protocol.md §3.1, util_test.go,
// suspicion_test.go, awareness_test.go).
#include <gtest/gtest.h>

#include <cmath>

#include "core/awareness.h"
#include "core/formulas.h"

namespace memberlist::core {
namespace {

using namespace std::chrono_literals;

TEST(Formulas, SuspicionTimeout) {
  struct Case { size_t n; Duration expected; };
  for (auto c : {Case{5, 1000ms}, Case{10, 1000ms}, Case{50, 1698ms}, Case{100, 2000ms}, Case{500, 2698ms},
                 Case{1000, 3000ms}}) {
    EXPECT_EQ(suspicion_timeout(3, c.n, 1s) / 3, c.expected) << "n=" << c.n;
  }
  // n below 1 and between 1 and 10 clamp to one interval per mult.
  EXPECT_EQ(suspicion_timeout(4, 0, 1s), 4s);
  EXPECT_EQ(suspicion_timeout(4, 1, 1s), 4s);
}

TEST(Formulas, RetransmitLimit) {
  EXPECT_EQ(retransmit_limit(3, 0), 0);
  EXPECT_EQ(retransmit_limit(3, 1), 3);
  EXPECT_EQ(retransmit_limit(3, 99), 6);
  EXPECT_EQ(retransmit_limit(4, 9), 4);
  EXPECT_EQ(retransmit_limit(4, 10), 8);
}

TEST(Formulas, PushPullScale) {
  for (size_t n = 0; n <= 32; ++n) EXPECT_EQ(push_pull_scale(1s, n), 1s) << n;
  for (size_t n = 33; n <= 64; ++n) EXPECT_EQ(push_pull_scale(1s, n), 2s) << n;
  for (size_t n = 65; n <= 128; ++n) EXPECT_EQ(push_pull_scale(1s, n), 3s) << n;
  EXPECT_EQ(push_pull_scale(1s, 129), 4s);
}

// The integer forms agree with the reference's floating-point ones (math.Ceil(math.Log10(..)),
// math.Ceil(math.Log2(..) - math.Log2(32))) at every size up to 2^20, and next to every power
// of ten and of two above it up to 2^40. Stops at the first disagreement.
TEST(Formulas, IntegerFormsMatchTheReferencesFloatingPoint) {
  auto check = [](size_t n) {
    int want_limit = 3 * static_cast<int>(std::ceil(std::log10(static_cast<double>(n) + 1.0)));
    EXPECT_EQ(retransmit_limit(3, n), want_limit) << "n=" << n;
    if (n > 32) {
      double mult = std::ceil(std::log2(static_cast<double>(n)) - std::log2(32.0)) + 1.0;
      EXPECT_EQ(push_pull_scale(1s, n), Duration(static_cast<int64_t>(mult) * 1'000'000)) << "n=" << n;
    }
    return !::testing::Test::HasFailure();
  };
  constexpr size_t kDense = size_t{1} << 20, kTop = size_t{1} << 40;
  for (size_t n = 0; n <= kDense; ++n)
    if (!check(n)) return;
  for (size_t p = 10; p <= kTop; p *= 10)
    if (p > kDense && !(check(p - 1) && check(p) && check(p + 1))) return;
  for (size_t q = 2 * kDense; q <= kTop; q *= 2)
    if (!(check(q - 1) && check(q) && check(q + 1))) return;
}

TEST(Formulas, RemainingSuspicionTime) {
  EXPECT_EQ(remaining_suspicion_time(0, 3, 0s, 2s, 30s), 30s);
  EXPECT_EQ(remaining_suspicion_time(1, 3, 2s, 2s, 30s), 14s);
  EXPECT_EQ(remaining_suspicion_time(2, 3, 3s, 2s, 30s), 4810ms);
  EXPECT_EQ(remaining_suspicion_time(3, 3, 4s, 2s, 30s), -2s);
  // More confirmations than expected never go below min.
  EXPECT_EQ(remaining_suspicion_time(4, 3, 0s, 2s, 30s), 2s);
}

TEST(Awareness, DeltaScoreScaleTable) {
  struct Case { int delta; int score; Duration timeout; };
  const Case cases[] = {{0, 0, 1s},  {-1, 0, 1s}, {-10, 0, 1s}, {1, 1, 2s},  {-1, 0, 1s},
                        {10, 7, 8s}, {-1, 6, 7s}, {-1, 5, 6s},  {-1, 4, 5s}, {-1, 3, 4s},
                        {-1, 2, 3s}, {-1, 1, 2s}, {-1, 0, 1s},  {-1, 0, 1s}};
  Awareness a(8);
  int i = 0;
  for (const auto& c : cases) {
    a.apply_delta(c.delta);
    EXPECT_EQ(a.score(), c.score) << "case " << i;
    EXPECT_EQ(a.scale_timeout(1s), c.timeout) << "case " << i;
    ++i;
  }
}

TEST(Awareness, ReportsChangesOnly) {
  Awareness a(2);
  EXPECT_FALSE(a.apply_delta(-1));
  EXPECT_TRUE(a.apply_delta(5));
  EXPECT_EQ(a.score(), 1);
  EXPECT_FALSE(a.apply_delta(1));
}

}  // namespace
}  // namespace memberlist::core
