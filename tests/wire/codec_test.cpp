// Round trips through the native codec, compounds and the pack() overhead bounds.
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "test_util.h"
#include "wire/memberlist_generated.h"

namespace memberlist::wire::test {
namespace {

const core::Codec& codec() {
  static const auto c = make_flatbuffers_codec();
  return *c;
}

// Encodes, decodes, and expects exactly the same message back.
void expect_round_trip(const Message& m) {
  const Bytes enc = codec().encode(m);
  ASSERT_FALSE(enc.empty());
  std::vector<Message> out;
  const Status s = codec().decode(enc, out);
  ASSERT_TRUE(s.ok()) << s.message;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(m, out[0])) << "variant index " << m.index();
}

TEST(WireCodec, RoundTripEveryType) {
  for (const Message& m : sample_messages()) expect_round_trip(m);
}

TEST(WireCodec, EncodedBufferCarriesIdentifier) {
  const Bytes enc = codec().encode(Nack{1});
  ASSERT_GE(enc.size(), 8u);
  EXPECT_EQ(std::string(enc.begin() + 4, enc.begin() + 8), "MLW1");
}

TEST(WireCodec, RoundTripDefaultsAndEmptyStrings) {
  // Everything zero / empty where the message allows it.
  expect_round_trip(Ping{});
  expect_round_trip(IndirectPing{});
  expect_round_trip(Ack{});
  expect_round_trip(Nack{});
  expect_round_trip(Suspect{0, "n", ""});
  expect_round_trip(Alive{0, "n", Address{}, {}, {}});
  expect_round_trip(Dead{0, "n", ""});
  expect_round_trip(PushPull{});
  expect_round_trip(UserMsg{});
  expect_round_trip(ErrResp{});
}

TEST(WireCodec, RoundTripExtremeValues) {
  const std::string name255(255, 'x');
  const uint32_t max32 = std::numeric_limits<uint32_t>::max();
  const Address six = v6_all_bits(65535);
  expect_round_trip(Ping{max32, name255, six, name255});
  expect_round_trip(IndirectPing{max32, six, name255, true, six, name255});
  expect_round_trip(Ack{max32, bytes_of(60000)});
  expect_round_trip(Nack{max32});
  expect_round_trip(Suspect{max32, name255, name255});
  expect_round_trip(Alive{max32, name255, six, bytes_of(512), {255, 255, 255, 255, 255, 255}});
  expect_round_trip(Dead{max32, name255, name255});
  expect_round_trip(UserMsg{bytes_of(1 << 20)});
  expect_round_trip(ErrResp{std::string(10000, 'e')});
  // Names are bytes: UTF-8 beyond ASCII travels unchanged.
  expect_round_trip(Suspect{1, "n\xc3\xa9\xe2\x82\xac", "\xf0\x9f\x98\x80"});
}

TEST(WireCodec, RoundTripUserBroadcast) {
  const uint32_t max32 = std::numeric_limits<uint32_t>::max();
  expect_round_trip(UserBroadcast{"n1", 7, 1, "", {}});                       // unique, empty
  expect_round_trip(UserBroadcast{"n1", 0, 1, "cfg", bytes_of(1)});
  expect_round_trip(UserBroadcast{std::string(255, 'o'), max32, max32, std::string(255, 'n'), bytes_of(1300)});
  // Inside a compound, next to other messages.
  std::vector<Bytes> parts{codec().encode(Nack{1}), codec().encode(UserBroadcast{"n2", 3, 9, "x", bytes_of(5)})};
  std::vector<Message> out;
  ASSERT_TRUE(codec().decode(codec().pack(parts), out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(same(out[1], Message{UserBroadcast{"n2", 3, 9, "x", bytes_of(5)}}));
}

TEST(WireCodec, UserBroadcastWithBadNamesIsRejected) {
  std::vector<Message> out;
  // No origin, an origin with NUL, a name over 255 bytes: all refused, nothing decoded.
  for (const UserBroadcast& m : {UserBroadcast{"", 1, 1, "", {}}, UserBroadcast{std::string("a\0b", 3), 1, 1, "", {}},
                                 UserBroadcast{"n1", 1, 1, std::string(256, 'n'), {}}}) {
    const Status s = codec().decode(codec().encode(m), out);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code, Errc::protocol);
  }
  EXPECT_TRUE(out.empty());
}

TEST(WireCodec, RoundTripBigPushPull) {
  PushPull pp;
  pp.join = false;
  for (int i = 0; i < 1000; ++i) {
    PushNodeState n;
    n.name = "node-" + std::to_string(i);
    n.addr = (i % 2) ? v4(10, 1, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i), 7946) : v6_all_bits(static_cast<uint16_t>(i));
    n.meta = bytes_of(static_cast<size_t>(i % 64), static_cast<uint8_t>(i));
    n.incarnation = static_cast<uint32_t>(i * 7919);
    n.state = static_cast<NodeState>(i % 4);
    n.vsn = {1, 5, 2, 0, static_cast<uint8_t>(i % 3), 0};
    pp.nodes.push_back(std::move(n));
  }
  pp.user_state = bytes_of(4 << 20);
  expect_round_trip(pp);
  pp.user_state.clear();
  expect_round_trip(pp);
}

TEST(WireCodec, DecodeAppendsToExistingOutput) {
  std::vector<Message> out{Nack{5}};
  ASSERT_TRUE(codec().decode(codec().encode(Nack{6}), out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(std::get<Nack>(out[1]).seq, 6u);
}

TEST(WireCodec, DecodesUnalignedInput) {
  const Bytes enc = codec().encode(sample_messages()[5]);
  for (size_t shift = 1; shift < 8; ++shift) {
    Bytes shifted(shift, 0);
    shifted.insert(shifted.end(), enc.begin(), enc.end());
    std::vector<Message> out;
    const Status s = codec().decode(std::span<const uint8_t>(shifted).subspan(shift), out);
    ASSERT_TRUE(s.ok()) << "shift " << shift << ": " << s.message;
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(same(out[0], sample_messages()[5]));
  }
}

TEST(WireCompound, PackOnePartReturnsItUnchanged) {
  const Bytes p = codec().encode(Nack{3});
  EXPECT_EQ(codec().pack({p}), p);
}

TEST(WireCompound, PackAndDecodeAllTypes) {
  const auto msgs = sample_messages();
  std::vector<Bytes> parts;
  for (const auto& m : msgs) parts.push_back(codec().encode(m));
  const Bytes packed = codec().pack(parts);
  std::vector<Message> out;
  const Status s = codec().decode(packed, out);
  ASSERT_TRUE(s.ok()) << s.message;
  ASSERT_EQ(out.size(), msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) EXPECT_TRUE(same(msgs[i], out[i])) << i;
}

TEST(WireCompound, PackOfNothingDecodesToNothing) {
  std::vector<Message> out;
  EXPECT_TRUE(codec().decode(codec().pack({}), out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(WireCompound, MaxPartsRoundTrip) {
  std::vector<Bytes> parts;
  for (size_t i = 0; i < codec().pack_max_parts(); ++i) parts.push_back(codec().encode(Nack{static_cast<uint32_t>(i)}));
  std::vector<Message> out;
  ASSERT_TRUE(codec().decode(codec().pack(parts), out).ok());
  ASSERT_EQ(out.size(), parts.size());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(std::get<Nack>(out[i]).seq, i);
}

// The core budgets piggybacked bytes with these numbers: pack() must never exceed them.
TEST(WireCompound, PackOverheadIsAnUpperBound) {
  std::mt19937 rng(42);
  size_t worst_slack = std::numeric_limits<size_t>::max();
  for (int iter = 0; iter < 3000; ++iter) {
    const size_t n = (iter < 256) ? static_cast<size_t>(iter) : rng() % (codec().pack_max_parts() + 1);
    std::vector<Bytes> parts(n);
    size_t sum = 0;
    for (auto& p : parts) {
      // Odd sizes force the most alignment padding; encode() output sizes are also used.
      const size_t sz = (iter % 3 == 0) ? (rng() % 40) * 4 + 1 : rng() % 300;
      p = bytes_of(sz, static_cast<uint8_t>(rng()));
      sum += sz;
    }
    const Bytes packed = codec().pack(parts);
    const size_t bound = sum + (n == 1 ? 0 : codec().pack_header_overhead() + n * codec().pack_part_overhead());
    ASSERT_LE(packed.size(), bound) << "n=" << n << " sum=" << sum;
    if (n > 1) worst_slack = std::min(worst_slack, bound - packed.size());
  }
  // The bound is exact: parts whose sizes are 1 mod 4 reach it.
  EXPECT_EQ(worst_slack, 0u);
}

TEST(WireCompound, PackOverheadBoundHoldsForEncodedMessages) {
  const auto msgs = sample_messages();
  std::vector<Bytes> parts;
  size_t sum = 0;
  for (const auto& m : msgs) {
    parts.push_back(codec().encode(m));
    sum += parts.back().size();
    const Bytes packed = codec().pack(parts);
    EXPECT_LE(packed.size(),
              sum + (parts.size() == 1 ? 0 : codec().pack_header_overhead() + parts.size() * codec().pack_part_overhead()));
  }
}

TEST(WireCompound, BadPartDoesNotSpoilGoodParts) {
  std::vector<Bytes> parts{codec().encode(Nack{1}), bytes_of(24), codec().encode(Suspect{4, "a", "b"}), {}};
  std::vector<Message> out;
  const Status s = codec().decode(codec().pack(parts), out);
  EXPECT_EQ(s.code, Errc::protocol);
  EXPECT_NE(s.message.find("2 of 4"), std::string::npos) << s.message;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(same(out[0], Nack{1}));
  EXPECT_TRUE(same(out[1], Suspect{4, "a", "b"}));
}

TEST(WireCompound, NestedCompoundIsRejected) {
  const Bytes inner = codec().pack({codec().encode(Nack{1}), codec().encode(Nack{2})});
  std::vector<Message> out;
  const Status s = codec().decode(codec().pack({inner, codec().encode(Nack{3})}), out);
  EXPECT_EQ(s.code, Errc::protocol);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<Nack>(out[0]).seq, 3u);
}

}  // namespace
}  // namespace memberlist::wire::test
