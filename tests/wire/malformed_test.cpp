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

Bytes finish(FlatBufferBuilder& b, fb::Body type, flatbuffers::Offset<void> body) {
  b.Finish(fb::CreateEnvelope(b, type, body), fb::EnvelopeIdentifier());
  return Bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
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
    // Half of them carry our identifier and a small root offset, to get past the first checks.
    if (i % 2 == 0 && buf.size() >= 8) {
      buf[0] = static_cast<uint8_t>(8 + 4 * (rng() % 8));
      buf[1] = buf[2] = buf[3] = 0;
      std::memcpy(buf.data() + 4, "MLW1", 4);
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

TEST(WireMalformed, WrongIdentifier) {
  Bytes enc = codec().encode(Nack{1});
  enc[7] = '2';
  expect_error(enc, Errc::protocol, "verification");
}

TEST(WireMalformed, UnknownUnionType) {
  FlatBufferBuilder b;
  const Bytes enc = finish(b, static_cast<fb::Body>(200), fb::CreateNack(b, 1).Union());
  expect_error(enc, Errc::protocol, "unknown message type 200");
}

TEST(WireMalformed, NoneUnionType) {
  FlatBufferBuilder b;
  const Bytes enc = finish(b, fb::Body_NONE, fb::CreateNack(b, 1).Union());
  expect_error(enc, Errc::protocol, "unknown message type 0");
}

TEST(WireMalformed, MissingBody) {
  FlatBufferBuilder b;
  const auto start = b.StartTable();
  b.AddElement<uint8_t>(fb::Envelope::VT_BODY_TYPE, fb::Body_Nack, 0);
  b.Finish(flatbuffers::Offset<fb::Envelope>(b.EndTable(start)), fb::EnvelopeIdentifier());
  expect_error(Bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()), Errc::protocol);
}

TEST(WireMalformed, MissingRequiredFields) {
  {  // Alive without a node name.
    FlatBufferBuilder b;
    const fb::Address addr;
    const auto start = b.StartTable();
    b.AddElement<uint32_t>(fb::Alive::VT_INCARNATION, 1, 0);
    b.AddStruct(fb::Alive::VT_ADDR, &addr);
    expect_error(finish(b, fb::Body_Alive, flatbuffers::Offset<void>(b.EndTable(start))), Errc::protocol);
  }
  {  // Alive without an address.
    FlatBufferBuilder b;
    const auto name = b.CreateString("n1");
    const auto start = b.StartTable();
    b.AddOffset(fb::Alive::VT_NODE, name);
    expect_error(finish(b, fb::Body_Alive, flatbuffers::Offset<void>(b.EndTable(start))), Errc::protocol);
  }
  {  // Compound without ends.
    FlatBufferBuilder b;
    const auto data = b.CreateVector(Bytes(8));
    const auto start = b.StartTable();
    b.AddOffset(fb::Compound::VT_DATA, data);
    expect_error(finish(b, fb::Body_Compound, flatbuffers::Offset<void>(b.EndTable(start))), Errc::protocol);
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

TEST(WireMalformed, UnknownNodeState) {
  FlatBufferBuilder b;
  const auto name = b.CreateString("n1");
  const fb::Address addr;
  const auto node = fb::CreatePushNodeState(b, name, &addr, 0, 1, static_cast<fb::NodeState>(9));
  const auto nodes = b.CreateVector(&node, 1);
  expect_error(finish(b, fb::Body_PushPull, fb::CreatePushPull(b, false, nodes).Union()), Errc::protocol,
               "node state 9");
}

// A small buffer whose node offsets all point at one node with large metadata: decoding it
// naively would allocate gigabytes.
TEST(WireMalformed, AliasedOffsetsAreRejected) {
  FlatBufferBuilder b;
  const auto name = b.CreateString("n1");
  const auto meta = b.CreateVector(bytes_of(60000));
  const fb::Address addr;
  const auto node = fb::CreatePushNodeState(b, name, &addr, meta);
  const std::vector<flatbuffers::Offset<fb::PushNodeState>> many(100000, node);
  const auto nodes = b.CreateVector(many);
  expect_error(finish(b, fb::Body_PushPull, fb::CreatePushPull(b, false, nodes).Union()), Errc::protocol,
               "aliased");
}

TEST(WireMalformed, TooManyPushNodes) {
  FlatBufferBuilder b;
  const auto name = b.CreateString("n");
  const fb::Address addr;
  const auto node = fb::CreatePushNodeState(b, name, &addr);
  const std::vector<flatbuffers::Offset<fb::PushNodeState>> many((size_t{1} << 20) + 1, node);
  const auto nodes = b.CreateVector(many);
  std::vector<Message> out;
  const Status s = decode(finish(b, fb::Body_PushPull, fb::CreatePushPull(b, false, nodes).Union()), out);
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

Bytes raw_compound(const std::vector<uint32_t>& ends, const Bytes& data) {
  FlatBufferBuilder b;
  const auto d = b.CreateVector(data);
  const auto e = b.CreateVector(ends);
  return finish(b, fb::Body_Compound, fb::CreateCompound(b, e, d).Union());
}

TEST(WireMalformed, CompoundPartsOutOfRange) {
  const Bytes nack = codec().encode(Nack{7});
  Bytes data = nack;
  data.resize(data.size() + 4);
  const auto n = static_cast<uint32_t>(nack.size());
  {  // Second part claims to end past the data: first part still decodes.
    std::vector<Message> out;
    const Status s = decode(raw_compound({n, n + 1000}, data), out);
    EXPECT_EQ(s.code, Errc::protocol);
    EXPECT_NE(s.message.find("out of range"), std::string::npos) << s.message;
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(std::get<Nack>(out[0]).seq, 7u);
  }
  {  // Ends going backwards.
    std::vector<Message> out;
    const Status s = decode(raw_compound({n, 3, n}, data), out);
    EXPECT_EQ(s.code, Errc::protocol);
    EXPECT_NE(s.message.find("2 of 3"), std::string::npos) << s.message;
    EXPECT_EQ(out.size(), 1u);
  }
  {  // A part at an unaligned offset fails verification, never reads misaligned.
    Bytes shifted(1, 0);
    shifted.insert(shifted.end(), nack.begin(), nack.end());
    std::vector<Message> out;
    const Status s = decode(raw_compound({1, static_cast<uint32_t>(shifted.size())}, shifted), out);
    EXPECT_EQ(s.code, Errc::protocol);
  }
}

}  // namespace
}  // namespace memberlist::wire::test
