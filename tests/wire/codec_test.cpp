// Round trips through the native codec, compounds and the pack() overhead bounds.
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "test_util.h"
#include "wire/memberlist_generated.h"

namespace memberlist::wire::test {
namespace {

namespace fb = memberlist::wire::fb;

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

// A message is its type byte, then a FlatBuffers buffer with that type's table as root.
TEST(WireCodec, EncodedMessageIsTypeByteAndTable) {
  const Bytes enc = codec().encode(Alive{7, "n1", v4(10, 0, 0, 1, 7946), {}, {1, 5, 2, 0, 0, 0}});
  ASSERT_GE(enc.size(), 2u);
  EXPECT_EQ(enc[0], fb::MessageType_Alive);
  const Bytes table(enc.begin() + 1, enc.end());  // a copy is suitably aligned
  flatbuffers::Verifier verifier(table.data(), table.size());
  ASSERT_TRUE(verifier.VerifyBuffer<fb::Alive>(nullptr));
  const auto* alive = flatbuffers::GetRoot<fb::Alive>(table.data());
  EXPECT_EQ(alive->incarnation(), 7u);
  EXPECT_EQ(alive->node()->str(), "n1");
  ASSERT_NE(alive->addr(), nullptr);  // IPv4 as 4 bytes
  EXPECT_EQ(alive->addr()->ip()->Get(3), 1);
  EXPECT_EQ(alive->addr()->port(), 7946);
  EXPECT_EQ(alive->addr6(), nullptr);
  EXPECT_EQ(alive->vsn(), nullptr);  // the default vector is left out
}

TEST(WireCodec, AddressForms) {
  // IPv4 travels as 4 bytes and comes back v4-mapped; IPv6 and v4-compatible forms as 16.
  Address v4_compat;
  v4_compat.ip[15] = 1;
  v4_compat.port = 80;
  Address zero_ip_with_port;
  zero_ip_with_port.port = 7946;
  for (const Address& a : {v4(10, 0, 0, 1, 7946), v4(0, 0, 0, 0, 0), v4(255, 255, 255, 255, 65535),
                           v6_all_bits(7946), v4_compat, zero_ip_with_port}) {
    expect_round_trip(Ping{1, "n", a, "s"});
    expect_round_trip(Alive{1, "n", a, {}, {}});
    expect_round_trip(IndirectPing{1, a, "n", false, a, "s"});
    PushPull pp;
    pp.nodes.push_back({"n", a, {}, 1, NodeState::Alive, {1, 5, 2, 0, 0, 0}});
    expect_round_trip(pp);
  }
  // An IPv6 address costs 12 bytes more than an IPv4 one.
  EXPECT_EQ(codec().encode(Alive{1, "n", v6_all_bits(1), {}, {}}).size(),
            codec().encode(Alive{1, "n", v4(1, 2, 3, 4, 1), {}, {}}).size() + 12);
}

// Zero scalars, empty strings and vectors, the empty address and the default Vsn are left
// out of the tables (the builder's force_defaults stays off).
TEST(WireCodec, DefaultsAreLeftOut) {
  EXPECT_LT(codec().encode(Nack{0}).size(), codec().encode(Nack{1}).size());
  EXPECT_LT(codec().encode(Ack{1, {}}).size(), codec().encode(Ack{1, {0}}).size());
  EXPECT_LT(codec().encode(Ping{1, "n", {}, ""}).size(), codec().encode(Ping{1, "n", v4(1, 2, 3, 4, 5), ""}).size());
  EXPECT_LT(codec().encode(Alive{1, "n", v4(1, 2, 3, 4, 5), {}, {1, 5, 2, 0, 0, 0}}).size(),
            codec().encode(Alive{1, "n", v4(1, 2, 3, 4, 5), {}, {1, 5, 2, 0, 0, 1}}).size());
}

// A graceful leave names its node twice; the wire carries the name once.
TEST(WireCodec, LeaveSharesTheName) {
  const std::string name(255, 'n');
  expect_round_trip(Dead{1, name, name});
  expect_round_trip(Dead{1, "n1", "n1"});
  expect_round_trip(Dead{1, "n1", "n2"});
  expect_round_trip(Dead{1, "n1", ""});
  EXPECT_LT(codec().encode(Dead{1, name, name}).size(), codec().encode(Dead{1, name, "x"}).size() + 8);
}

TEST(WireCodec, VsnForms) {
  for (const Vsn& v : {Vsn{1, 5, 2, 0, 0, 0}, Vsn{}, Vsn{1, 5, 3, 0, 0, 0}, Vsn{1, 5, 2, 1, 2, 1},
                       Vsn{255, 255, 255, 255, 255, 255}}) {
    expect_round_trip(Alive{1, "n", v4(1, 2, 3, 4, 5), {}, v});
    PushPull pp;
    pp.nodes.push_back({"n", v4(1, 2, 3, 4, 5), {}, 1, NodeState::Dead, v});
    expect_round_trip(pp);
  }
}

// Broadcast repair's fields (added after the first release; absent = no repair wanted).
TEST(WireCodec, RoundTripBroadcastRepair) {
  PushPull pp;
  pp.nodes.push_back({"n", v4(1, 2, 3, 4, 5), {}, 1, NodeState::Alive, {1, 5, 2, 0, 0, 0}});
  pp.repair_window_ms = 30000;
  pp.broadcast_digest = {{"a", 7, 1}, {"b", 0, 4294967295u}};
  pp.broadcast_repair = {UserBroadcast{"a", 7, 2, "", bytes_of(3)}, UserBroadcast{"c", 1, 1, "named", {}}};
  expect_round_trip(pp);
  expect_round_trip(UserBroadcast{"a", 7, 2, "", bytes_of(3), true, 12345});
  // Without them the message is what it was.
  PushPull plain;
  plain.nodes = pp.nodes;
  EXPECT_LT(codec().encode(plain).size() + 40, codec().encode(pp).size());
  expect_round_trip(plain);
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
    const bool big = iter % 100 == 0;  // parts of 16 KiB and more take the most length bytes
    const size_t n = big ? 2 + rng() % 3 : (iter < 256) ? static_cast<size_t>(iter) : rng() % (codec().pack_max_parts() + 1);
    std::vector<Bytes> parts(n);
    size_t sum = 0;
    for (auto& p : parts) {
      const size_t sz = big ? 16384 + rng() % 50000 : rng() % 300;
      p = bytes_of(sz, static_cast<uint8_t>(rng()));
      sum += sz;
    }
    const Bytes packed = codec().pack(parts);
    const size_t bound = sum + (n == 1 ? 0 : codec().pack_header_overhead() + n * codec().pack_part_overhead());
    ASSERT_LE(packed.size(), bound) << "n=" << n << " sum=" << sum;
    if (n > 1) worst_slack = std::min(worst_slack, bound - packed.size());
  }
  // The bound is exact: parts of 16 KiB and more reach it.
  EXPECT_EQ(worst_slack, 0u);
}

// What a compound costs: type and count bytes, and one length byte per part under 128 bytes.
TEST(WireCompound, PackSize) {
  const Bytes a = bytes_of(10), b = bytes_of(127), c = bytes_of(128), d = bytes_of(16384);
  EXPECT_EQ(codec().pack({a, b}).size(), 2 + 1 + 10 + 1 + 127u);
  EXPECT_EQ(codec().pack({a, c}).size(), 2 + 1 + 10 + 2 + 128u);
  EXPECT_EQ(codec().pack({a, d}).size(), 2 + 1 + 10 + 3 + 16384u);
  EXPECT_EQ(codec().pack({}).size(), 2u);
}

// More parts than pack_max_parts() still make a correct compound (two count bytes), up to
// the reference's 255; a compound of more is refused whole (each part may cost a reply).
TEST(WireCompound, MorePartsThanTheMaximum) {
  std::vector<Bytes> parts;
  for (uint32_t i = 1; i <= 255; ++i) parts.push_back(codec().encode(Nack{i}));
  std::vector<Message> out;
  ASSERT_TRUE(codec().decode(codec().pack(parts), out).ok());
  ASSERT_EQ(out.size(), parts.size());
  EXPECT_EQ(std::get<Nack>(out.back()).seq, 255u);
  parts.push_back(codec().encode(Nack{256}));
  out.clear();
  const Status s = codec().decode(codec().pack(parts), out);
  EXPECT_EQ(s.code, Errc::protocol);
  EXPECT_NE(s.message.find("256 parts"), std::string::npos) << s.message;
  EXPECT_TRUE(out.empty());
}

// A datagram cut anywhere inside a compound: the parts before the cut still decode, and the
// cut is reported.
TEST(WireCompound, TruncatedCompoundKeepsCompleteParts) {
  std::vector<Bytes> parts;
  for (uint32_t i = 0; i < 5; ++i) parts.push_back(codec().encode(Nack{i * 1000}));
  const Bytes packed = codec().pack(parts);
  for (size_t n = 0; n < packed.size(); ++n) {
    std::vector<Message> out;
    const Status s = codec().decode(std::span<const uint8_t>(packed).first(n), out);
    EXPECT_FALSE(s.ok()) << "cut at " << n;
    size_t complete = 0;
    for (size_t end = 2; complete < parts.size() && end + 1 + parts[complete].size() <= n; ++complete) {
      end += 1 + parts[complete].size();
    }
    EXPECT_EQ(out.size(), complete) << "cut at " << n;
  }
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
