// Hostile input for the native codec: random bytes, truncations, bit flips, hand-built
// buffers that pass the FlatBuffers verifier but break our rules. Every case must end in
// an error Status (or, where the damage only hit unused padding, the original message);
// never a crash. Inputs are copied into exactly-sized buffers so that ASan sees any
// read past the end (run this target once with -DML_SANITIZE=address,undefined).
#include <algorithm>
#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "test_util.h"
#include "wire/memberlist_generated.h"

namespace memberlist::wire::test {
namespace {

namespace fb = memberlist::wire::fb;
using flatbuffers::FlatBufferBuilder;

const core::Codec& codec() {
  static const auto c = make_flatbuffers_codec();
  return *c;
}

Status decode(const Bytes& in, std::vector<Message>& out) { return codec().decode(in, out); }

// A message as the codec writes it: the type byte, then the buffer with `table` as root.
Bytes finish(FlatBufferBuilder& b, uint8_t type, flatbuffers::Offset<void> table) {
  b.Finish(table);
  Bytes out{type};
  out.insert(out.end(), b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  return out;
}

void expect_error(const Bytes& in, Errc code, const std::string& needle = "") {
  std::vector<Message> out;
  const Status s = decode(in, out);
  EXPECT_EQ(s.code, code) << s.message;
  EXPECT_FALSE(s.message.empty());
  if (!needle.empty()) {
    EXPECT_NE(s.message.find(needle), std::string::npos) << s.message;
  }
  EXPECT_TRUE(out.empty());
}

TEST(WireMalformed, EmptyInput) { expect_error({}, Errc::protocol); }

TEST(WireMalformed, RandomBytes) {
  std::mt19937_64 rng(0x5eed);
  size_t accepted = 0;
  for (int i = 0; i < 100000; ++i) {
    Bytes buf(rng() % 200);
    for (auto& byte : buf) byte = static_cast<uint8_t>(rng());
    // Half of them carry a known type and a small root offset, to get past the first checks.
    if (i % 2 == 0 && buf.size() >= 5) {
      buf[0] = static_cast<uint8_t>(fb::MessageType_MIN + rng() % (fb::MessageType_MAX - fb::MessageType_MIN));
      buf[1] = static_cast<uint8_t>(4 + 4 * (rng() % 8));
      buf[2] = buf[3] = buf[4] = 0;
    }
    std::vector<Message> out;
    const Status s = decode(buf, out);
    if (s.ok()) {
      ++accepted;
    } else {
      EXPECT_TRUE(s.code == Errc::protocol || s.code == Errc::too_large);
    }
  }
  // Random data essentially never forms a valid message.
  EXPECT_LT(accepted, 100u);
}

std::vector<Bytes> valid_inputs() {
  std::vector<Bytes> v;
  std::vector<Bytes> parts;
  for (const auto& m : sample_messages()) {
    v.push_back(codec().encode(m));
    parts.push_back(v.back());
  }
  v.push_back(codec().pack(parts));
  return v;
}

TEST(WireMalformed, EveryTruncation) {
  for (const Bytes& full : valid_inputs()) {
    std::vector<Message> want;
    ASSERT_TRUE(decode(full, want).ok());
    for (size_t n = 0; n < full.size(); ++n) {
      const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      std::vector<Message> out;
      const Status s = decode(cut, out);
      if (s.ok()) {
        // Only trailing alignment padding was cut: the message must be unchanged.
        EXPECT_GE(n + 8, full.size());
        ASSERT_EQ(out.size(), want.size());
        for (size_t i = 0; i < out.size(); ++i) EXPECT_TRUE(same(out[i], want[i]));
      } else {
        EXPECT_EQ(s.code, Errc::protocol) << s.message;
      }
    }
  }
}

TEST(WireMalformed, EveryBitFlip) {
  for (const Bytes& full : valid_inputs()) {
    for (size_t bit = 0; bit < full.size() * 8; ++bit) {
      Bytes flipped = full;
      flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      std::vector<Message> out;
      const Status s = decode(flipped, out);
      if (!s.ok()) {
        EXPECT_TRUE(s.code == Errc::protocol || s.code == Errc::too_large) << s.message;
      }
    }
  }
}

TEST(WireMalformed, UnknownMessageType) {
  for (uint8_t type : {0, fb::MessageType_MAX + 1, 200, 255}) {
    FlatBufferBuilder b;
    const Bytes enc = finish(b, type, fb::CreateNack(b, 1).Union());
    expect_error(enc, Errc::protocol, "unknown message type " + std::to_string(type));
  }
}

TEST(WireMalformed, TypeByteWithoutTable) {
  for (uint8_t type = fb::MessageType_MIN; type < fb::MessageType_MAX; ++type) {
    expect_error(Bytes{type}, Errc::protocol, "verification");
    expect_error(Bytes{type, 4, 0, 0, 0}, Errc::protocol, "verification");
  }
}

// A table under the type byte of another message: its fields do not fit that type's.
TEST(WireMalformed, TableOfAnotherType) {
  FlatBufferBuilder b;
  const auto node = b.CreateString("n1");
  Bytes enc = finish(b, fb::MessageType_Dead, fb::CreateDead(b, 5, node).Union());
  enc[0] = fb::MessageType_PushPull;  // incarnation 5 read as the offset of the node vector
  expect_error(enc, Errc::protocol, "verification");
}

TEST(WireMalformed, MissingRequiredFields) {
  {  // Alive without a node name.
    FlatBufferBuilder b;
    const fb::Ip4 addr;
    const auto start = b.StartTable();
    b.AddElement<uint32_t>(fb::Alive::VT_INCARNATION, 1, 0);
    b.AddStruct(fb::Alive::VT_ADDR, &addr);
    expect_error(finish(b, fb::MessageType_Alive, flatbuffers::Offset<void>(b.EndTable(start))), Errc::protocol);
  }
  {  // Alive with the address in both forms.
    FlatBufferBuilder b;
    const auto name = b.CreateString("n1");
    const fb::Ip4 a4;
    const fb::Ip6 a6;
    expect_error(finish(b, fb::MessageType_Alive, fb::CreateAlive(b, 1, name, &a4, 0, &a6).Union()),
                 Errc::protocol, "both");
  }
  {  // Push/pull node with the address in both forms.
    FlatBufferBuilder b;
    const auto name = b.CreateString("n1");
    const fb::Ip4 a4;
    const fb::Ip6 a6;
    const auto node = fb::CreatePushNodeState(b, name, 1, &a4, fb::NodeState_Alive, 0, &a6);
    const auto nodes = b.CreateVector(&node, 1);
    expect_error(finish(b, fb::MessageType_PushPull, fb::CreatePushPull(b, nodes).Union()), Errc::protocol,
                 "both");
  }
}

TEST(WireMalformed, BadNames) {
  expect_error(codec().encode(Suspect{1, std::string(256, 'x'), "a"}), Errc::protocol, "node name");
  expect_error(codec().encode(Alive{1, "", v4(1, 2, 3, 4, 5), {}, {}}), Errc::protocol, "node name");
  expect_error(codec().encode(Dead{1, std::string("a\0b", 3), "a"}), Errc::protocol, "node name");
  expect_error(codec().encode(Ping{1, "n", {}, std::string(300, 's')}), Errc::protocol, "node name");
  PushPull pp;
  pp.nodes.push_back({std::string(256, 'n'), {}, {}, 1, NodeState::Alive, {}});
  expect_error(codec().encode(pp), Errc::protocol, "node name");
}

// Broadcast repair lists are capped (4096 entries each) and their names checked.
TEST(WireMalformed, BroadcastRepairLists) {
  PushPull pp;
  pp.broadcast_digest.assign(4097, BroadcastId{"a", 1, 1});
  expect_error(codec().encode(pp), Errc::too_large, "broadcast digest of 4097 entries");
  pp.broadcast_digest.clear();
  pp.broadcast_repair.assign(4097, UserBroadcast{"a", 1, 1, "", {}});
  expect_error(codec().encode(pp), Errc::too_large, "broadcast repair of 4097 entries");
  pp.broadcast_repair.assign(1, UserBroadcast{std::string(256, 'a'), 1, 1, "", {}});
  expect_error(codec().encode(pp), Errc::protocol, "user broadcast");
  pp.broadcast_repair.clear();
  pp.broadcast_digest.assign(1, BroadcastId{std::string("a\0b", 3), 1, 1});
  expect_error(codec().encode(pp), Errc::protocol, "push/pull digest");
}

TEST(WireMalformed, UnknownNodeState) {
  FlatBufferBuilder b;
  const auto name = b.CreateString("n1");
  const fb::Ip4 addr;
  const auto node = fb::CreatePushNodeState(b, name, 1, &addr, static_cast<fb::NodeState>(9));
  const auto nodes = b.CreateVector(&node, 1);
  expect_error(finish(b, fb::MessageType_PushPull, fb::CreatePushPull(b, nodes).Union()), Errc::protocol,
               "node state 9");
}

// A small buffer whose node offsets all point at one node with large metadata: decoding it
// naively would allocate gigabytes.
TEST(WireMalformed, AliasedOffsetsAreRejected) {
  FlatBufferBuilder b;
  const auto name = b.CreateString("n1");
  const auto meta = b.CreateVector(bytes_of(60000));
  const fb::Ip4 addr;
  const auto node = fb::CreatePushNodeState(b, name, 1, &addr, fb::NodeState_Alive, meta);
  const std::vector<flatbuffers::Offset<fb::PushNodeState>> many(100000, node);
  const auto nodes = b.CreateVector(many);
  expect_error(finish(b, fb::MessageType_PushPull, fb::CreatePushPull(b, nodes).Union()), Errc::protocol,
               "aliased");
}

TEST(WireMalformed, TooManyPushNodes) {
  FlatBufferBuilder b;
  const auto name = b.CreateString("n");
  const fb::Ip4 addr;
  const auto node = fb::CreatePushNodeState(b, name, 1, &addr);
  const std::vector<flatbuffers::Offset<fb::PushNodeState>> many((size_t{1} << 20) + 1, node);
  const auto nodes = b.CreateVector(many);
  std::vector<Message> out;
  const Status s = decode(finish(b, fb::MessageType_PushPull, fb::CreatePushPull(b, nodes).Union()), out);
  EXPECT_EQ(s.code, Errc::too_large) << s.message;
  EXPECT_TRUE(out.empty());
}

TEST(WireMalformed, HugeVectorLength) {
  const Bytes payload = bytes_of(16, 0x77);
  Bytes enc = codec().encode(UserMsg{payload});
  const auto it = std::search(enc.begin(), enc.end(), payload.begin(), payload.end());
  ASSERT_NE(it, enc.end());
  const size_t len_at = static_cast<size_t>(it - enc.begin()) - 4;
  for (uint32_t claimed : {17u, 0x10000u, 0x7fffffffu, 0xffffffffu}) {
    Bytes bad = enc;
    std::memcpy(bad.data() + len_at, &claimed, 4);  // little-endian host, as FlatBuffers
    expect_error(bad, Errc::protocol);
  }
}

// A compound as pack() writes it, from raw pieces: [type][count] then each piece as given.
Bytes raw_compound(uint8_t count, const std::vector<Bytes>& pieces) {
  Bytes out{fb::MessageType_Compound, count};
  for (const Bytes& p : pieces) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes with_len(const Bytes& part) {
  Bytes out{static_cast<uint8_t>(part.size())};  // parts under 128 bytes: one length byte
  out.insert(out.end(), part.begin(), part.end());
  return out;
}

TEST(WireMalformed, CompoundPartsOutOfRange) {
  const Bytes nack = codec().encode(Nack{7});
  ASSERT_LT(nack.size(), 128u);
  {  // Second part claims to run past the end: the first part still decodes.
    std::vector<Message> out;
    const Status s = decode(raw_compound(2, {with_len(nack), Bytes{100}, nack}), out);
    EXPECT_EQ(s.code, Errc::protocol);
    EXPECT_NE(s.message.find("1 of 2"), std::string::npos) << s.message;
    EXPECT_NE(s.message.find("truncated"), std::string::npos) << s.message;
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(std::get<Nack>(out[0]).seq, 7u);
  }
  {  // A length varint cut off at the end, and one longer than 5 bytes.
    for (const Bytes& bad_len : {Bytes{0x80}, Bytes{0xff, 0xff}, Bytes{0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
                                 Bytes{0xff, 0xff, 0xff, 0xff, 0x7f}}) {
      std::vector<Message> out;
      const Status s = decode(raw_compound(2, {with_len(nack), bad_len}), out);
      EXPECT_EQ(s.code, Errc::protocol);
      EXPECT_NE(s.message.find("1 of 2"), std::string::npos) << s.message;
      EXPECT_EQ(out.size(), 1u);
    }
  }
  {  // An empty part, a part with a bad table, a nested compound: each bad on its own.
    const Bytes inner = codec().pack({nack, nack});
    std::vector<Message> out;
    const Status s =
        decode(raw_compound(4, {Bytes{0}, with_len(Bytes{fb::MessageType_Alive, 1, 2}), with_len(inner), with_len(nack)}),
               out);
    EXPECT_EQ(s.code, Errc::protocol);
    EXPECT_NE(s.message.find("3 of 4"), std::string::npos) << s.message;
    ASSERT_EQ(out.size(), 1u);
  }
  {  // A compound of no parts; one without a count; bytes after the last part.
    std::vector<Message> out;
    EXPECT_TRUE(decode(raw_compound(0, {}), out).ok());
    expect_error(Bytes{fb::MessageType_Compound}, Errc::protocol, "count");
    expect_error(Bytes{fb::MessageType_Compound, 0x80}, Errc::protocol, "count");
    const Status s = decode(raw_compound(1, {with_len(nack), Bytes{1}}), out);
    EXPECT_EQ(s.code, Errc::protocol);
    EXPECT_NE(s.message.find("after the last"), std::string::npos) << s.message;
    EXPECT_EQ(out.size(), 1u);  // the part itself is fine
  }
  {  // A count far beyond the bytes there are; beyond the 255 parts a compound may have.
    std::vector<Message> out;
    Status s = decode(raw_compound(100, {with_len(nack)}), out);
    EXPECT_NE(s.message.find("99 of 100"), std::string::npos) << s.message;
    out.clear();
    s = decode(Bytes{fb::MessageType_Compound, 0xff, 0xff, 0xff, 0xff, 0x0f}, out);
    EXPECT_NE(s.message.find("4294967295 parts (limit 255)"), std::string::npos) << s.message;
  }
}

// Parts sit at any offset in a datagram; each is copied to aligned memory before the verifier
// sees it, so the decoded result does not depend on where the datagram or the part starts.
TEST(WireMalformed, CompoundPartsAtEveryAlignment) {
  const Bytes nack = codec().encode(Nack{9});
  for (size_t pad = 0; pad < 8; ++pad) {
    const Bytes filler = codec().encode(ErrResp{std::string(pad + 1, 'e')});
    const Bytes packed = codec().pack({filler, nack});
    for (size_t shift = 0; shift < 8; ++shift) {
      Bytes buf(shift, 0);
      buf.insert(buf.end(), packed.begin(), packed.end());
      std::vector<Message> out;
      const Status s = codec().decode(std::span<const uint8_t>(buf).subspan(shift), out);
      ASSERT_TRUE(s.ok()) << s.message;
      ASSERT_EQ(out.size(), 2u);
      EXPECT_EQ(std::get<Nack>(out[1]).seq, 9u);
    }
  }
}

}  // namespace
}  // namespace memberlist::wire::test
