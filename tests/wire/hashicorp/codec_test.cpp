// The hashicorp codec against bytes memberlist 0.2.2 writes (golden/vectors.txt), and its
// decoder against what Go's decoder accepts and what it must refuse.
#include "wire/hashicorp/codec.h"

#include <gtest/gtest.h>

#include "golden.h"
#include "test_util.h"
#include "wire/hashicorp/lzw.h"

namespace memberlist::wire::hashicorp::test {
namespace {

using namespace memberlist::core;
using wire::test::same;
using wire::test::v4;

Address ip6(std::initializer_list<uint8_t> tail, uint16_t port) {
  Address a;
  a.ip[0] = 0xfd;  // fd00::<tail>
  size_t i = 16 - tail.size();
  for (uint8_t b : tail) a.ip[i++] = b;
  a.port = port;
  return a;
}

const Vsn kVsn{1, 5, 2, 0, 0, 0};

// The message each golden vector holds (gen.go builds the same values in Go).
std::map<std::string, Message> expected_datagrams() {
  return {
      {"ping_min", Ping{1, "n2", {}, ""}},
      {"ping_source", Ping{1, "n2", v4(10, 0, 0, 1, 7946), "n1"}},
      {"ping_source_v6", Ping{4000000000u, "", ip6({1}, 65535), "n1"}},
      {"indirect_ping", IndirectPing{300, v4(10, 0, 0, 1, 7946), "n3", true, v4(10, 0, 0, 2, 7947), "n1"}},
      {"indirect_ping_plain", IndirectPing{7, ip6({3}, 80), "n3", false, {}, ""}},
      {"ack_nil", Ack{1, {}}},
      {"ack_payload", Ack{70000, {'h', 'e', 'l', 'l', 'o'}}},
      {"nack", Nack{70000}},
      {"suspect", Suspect{2, "n2", "n1"}},
      {"alive", Alive{1, "n1", v4(10, 0, 0, 1, 7946), {}, kVsn}},
      {"alive_meta_v6_long_name",
       Alive{300, "node-node-node-node-node-node-node-node-", ip6({1}, 7946), {'r', 'o', 'l', 'e', '=', 'w', 'e', 'b'},
             {1, 5, 3, 2, 4, 3}}},
      {"dead_leave", Dead{3, "n1", "n1"}},
      {"dead", Dead{5, "n2", "n1"}},
      {"err", ErrResp{"x"}},
      {"push_pull_empty", PushPull{false, {}, {}}},
      {"user_packet", UserMsg{{'h', 'e', 'l', 'l', 'o'}}},
  };
}

PushPull expected_push_pull() {
  PushPull pp;
  pp.join = true;
  pp.nodes = {
      {"n1", v4(10, 0, 0, 1, 7946), {'m'}, 1, NodeState::Alive, kVsn},
      {"n2", ip6({2}, 7947), {}, 9, NodeState::Suspect, kVsn},
      {"n3", v4(10, 0, 0, 3, 7948), {}, 2, NodeState::Dead, kVsn},
      {"n4", v4(10, 0, 0, 4, 7949), {}, 4, NodeState::Left, kVsn},
  };
  pp.user_state = Bytes(300, 's');
  return pp;
}

Bytes golden_msg(const std::string& name) {
  static const auto all = golden("msg");
  return unhex(all.at(name).at(0));
}

std::vector<Message> decode_ok(std::span<const uint8_t> data, bool stream = false) {
  const HashicorpCodec codec;
  std::vector<Message> out;
  const Status s = stream ? codec.decode_stream(data, out) : codec.decode(data, out);
  EXPECT_TRUE(s.ok()) << s.message;
  return out;
}

Status decode_status(const Bytes& data, bool stream = false, CodecLimits limits = {}) {
  const HashicorpCodec codec(limits);
  std::vector<Message> out;
  const Status s = stream ? codec.decode_stream(data, out) : codec.decode(data, out);
  EXPECT_TRUE(s.ok() || !s.message.empty());
  return s;
}

TEST(HashicorpCodec, EncodesEveryDatagramMessageAsGoDoes) {
  const HashicorpCodec codec;
  for (const auto& [name, msg] : expected_datagrams()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(hex(codec.encode(msg)), hex(golden_msg(name)));
  }
}

TEST(HashicorpCodec, DecodesEveryDatagramMessageGoWrites) {
  for (const auto& [name, msg] : expected_datagrams()) {
    SCOPED_TRACE(name);
    const auto out = decode_ok(golden_msg(name));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(same(out[0], msg));
  }
}

TEST(HashicorpCodec, PushPullStreamAsGoWritesIt) {
  const HashicorpCodec codec;
  const PushPull pp = expected_push_pull();
  EXPECT_EQ(hex(codec.encode(pp)), hex(golden_msg("push_pull")));
  EXPECT_EQ(hex(codec.encode_stream(pp)), hex(golden_msg("push_pull")));
  for (bool stream : {false, true}) {
    const auto out = decode_ok(golden_msg("push_pull"), stream);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(same(out[0], Message{pp}));
  }
}

TEST(HashicorpCodec, UserMessageHasAHeaderOnlyOnStreams) {
  const HashicorpCodec codec;
  const UserMsg m{{'h', 'e', 'l', 'l', 'o'}};
  EXPECT_EQ(hex(codec.encode(m)), hex(golden_msg("user_packet")));
  EXPECT_EQ(hex(codec.encode_stream(m)), hex(golden_msg("user_stream")));
  const auto out = decode_ok(golden_msg("user_stream"), true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], Message{m}));
  // Read as a datagram, the header is part of the payload (as Go's UDP path reads it).
  const auto raw = decode_ok(golden_msg("user_stream"));
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(std::get<UserMsg>(raw[0]).payload.size(), golden_msg("user_stream").size() - 1);
}

TEST(HashicorpCodec, CompoundAsGoWritesIt) {
  const HashicorpCodec codec;
  const Message ping = Ping{1, "n2", {}, ""}, suspect = Suspect{2, "n2", "n1"};
  const Bytes packed = codec.pack({codec.encode(ping), codec.encode(suspect)});
  EXPECT_EQ(hex(packed), hex(golden_msg("compound")));
  size_t parts_size = codec.encode(ping).size() + codec.encode(suspect).size();
  EXPECT_EQ(packed.size(), parts_size + codec.pack_header_overhead() + 2 * codec.pack_part_overhead());
  const auto out = decode_ok(packed);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(same(out[0], ping));
  EXPECT_TRUE(same(out[1], suspect));
  EXPECT_EQ(codec.pack_max_parts(), 255u);
  EXPECT_EQ(hex(codec.pack({codec.encode(ping)})), hex(codec.encode(ping)));
}

TEST(HashicorpCodec, DecodesGoCompressedMessage) {
  const auto out = decode_ok(golden_msg("compressed_ping"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], Message{Ping{1, "n2", {}, ""}}));
  // On a stream too (readStream unwraps one compressMsg).
  const auto s = decode_ok(golden_msg("compressed_ping"), true);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_TRUE(same(s[0], Message{Ping{1, "n2", {}, ""}}));
}

TEST(HashicorpCodec, SkipsKeysItDoesNotKnow) {
  const auto out = decode_ok(golden_msg("ping_future_keys"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], Message{Ping{1, "n2", {}, ""}}));
}

// The generator mirrors memberlist's structs; these lines were produced by memberlist's own
// encode() (shared/reference/memberlist-protocol.md section 2.3), so they check the mirror.
TEST(HashicorpCodec, GoldenFileAgreesWithMemberlistsOwnEncode) {
  EXPECT_EQ(hex(golden_msg("ping_min")), "0082a44e6f6465a26e32a55365714e6f01");
  EXPECT_EQ(hex(golden_msg("ping_source")),
            "0085a44e6f6465a26e32a55365714e6f01aa536f7572636541646472a40a000001aa536f757263654e6f6465a26e31aa536f7572"
            "6365506f7274cd1f0a");
  EXPECT_EQ(hex(golden_msg("ack_nil")), "0282a75061796c6f6164c0a55365714e6f01");
  EXPECT_EQ(hex(golden_msg("nack")), "0b81a55365714e6fce00011170");
  EXPECT_EQ(hex(golden_msg("suspect")), "0383a446726f6da26e31ab496e6361726e6174696f6e02a44e6f6465a26e32");
  EXPECT_EQ(hex(golden_msg("alive")),
            "0486a441646472a40a000001ab496e6361726e6174696f6e01a44d657461c0a44e6f6465a26e31a4506f7274cd1f0aa356736ea6"
            "010502000000");
  EXPECT_EQ(hex(golden_msg("dead_leave")), "0583a446726f6da26e31ab496e6361726e6174696f6e03a44e6f6465a26e31");
  EXPECT_EQ(hex(golden_msg("err")), "0d81a54572726f72a178");
  EXPECT_EQ(hex(golden_msg("user_stream")).substr(0, 28), "0881aa557365724d73674c656e05");
  EXPECT_EQ(hex(golden_msg("compound")).substr(0, 12), "07020011001f");
  EXPECT_EQ(hex(golden_msg("compressed_ping")).substr(0, 38), "0982a4416c676f00a3427566b500010822e5e4");
}

TEST(HashicorpCodec, EncodesEveryIntegerInItsSmallestUnsignedForm) {
  const HashicorpCodec codec;
  // UserMsgLen is a Go int: 0.2.2's go-msgpack writes it unsigned (HEAD's v2 would write d1).
  const Bytes hdr = codec.encode_stream(UserMsg{Bytes(200, 1)});
  EXPECT_EQ(hex(Bytes(hdr.begin(), hdr.begin() + 15)), "0881aa557365724d73674c656eccc8");
  // Names of 32..65535 bytes are raw16 (da), never str8 (d9).
  const Bytes b = codec.encode(ErrResp{std::string(40, 'e')});
  EXPECT_EQ(b[8], 0xda);
  EXPECT_EQ(hex(Bytes(b.begin() + 8, b.begin() + 11)), "da0028");
}

TEST(HashicorpCodec, AcceptsEveryFormGoAccepts) {
  // Node as str8 (d9), SeqNo as a needlessly wide uint32.
  auto out = decode_ok(unhex("0082a44e6f6465d9026e32a55365714e6fce00000001"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], Message{Ping{1, "n2", {}, ""}}));
  // Node as bin8 (c4), nil Node, Nack missing, Target as bin (c4 04 ...).
  out = decode_ok(unhex("0183a44e6f6465c4026e33a6546172676574c4040a000001a4506f7274cd1f0a"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], Message{IndirectPing{0, v4(10, 0, 0, 1, 7946), "n3", false, {}, ""}}));
  out = decode_ok(unhex("0381a44e6f6465c0"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], Message{Suspect{0, "", ""}}));
  // HEAD (go-msgpack v2) writes Go ints signed: int16 d1, int8 d0.
  out = decode_ok(unhex("0881aa557365724d73674c656ed1000568656c6c6f"), true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], Message{UserMsg{{'h', 'e', 'l', 'l', 'o'}}}));
  out = decode_ok(unhex("0683a44a6f696ec2a54e6f646573d000ac5573657253746174654c656ed10000"), true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(same(out[0], Message{PushPull{}}));
  // A 16-byte IPv4-mapped address (Go's autodetected bind address) is the same address.
  out = decode_ok(unhex("0483a441646472b000000000000000000000ffff0a000001a4506f7274cd1f0aa44e6f6465a26e31"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<Alive>(out[0]).addr, v4(10, 0, 0, 1, 7946));
  // ...and is written back in its 16-byte form (Go compares the bytes), re-gossiped or in a
  // push/pull node state; an address in its 4-byte form stays 4 bytes.
  EXPECT_TRUE(std::get<Alive>(out[0]).addr.wire16);
  const HashicorpCodec codec;
  const Bytes enc = codec.encode(out[0]);
  const Bytes addr16 = unhex("a441646472b000000000000000000000ffff0a000001");  // "Addr": raw16
  EXPECT_NE(std::search(enc.begin(), enc.end(), addr16.begin(), addr16.end()), enc.end());
  PushPull pp;
  pp.nodes.push_back(PushNodeState{"n1", std::get<Alive>(out[0]).addr, {}, 1, NodeState::Alive, {}});
  std::vector<Message> back;
  ASSERT_TRUE(codec.decode_stream(codec.encode_stream(pp), back).ok());
  EXPECT_TRUE(std::get<PushPull>(back.at(0)).nodes.at(0).addr.wire16);
  EXPECT_FALSE(std::get<Alive>(decode_ok(codec.encode(Alive{1, "n2", v4(10, 0, 0, 1, 7946), {}, {}})).at(0)).addr.wire16);
  // Vsn as an array of integers, and a short one.
  out = decode_ok(unhex("0482a356736e96010502020403a44e6f6465a26e31"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<Alive>(out[0]).vsn, (Vsn{1, 5, 2, 2, 4, 3}));
  out = decode_ok(unhex("0481a356736ea3010502"));
  EXPECT_EQ(std::get<Alive>(out.at(0)).vsn, (Vsn{1, 5, 2, 0, 0, 0}));
  // A nil Vsn (found by fuzz_hashicorp under UBSan: nil must not reach memcpy).
  out = decode_ok(unhex("0482a356736ec0a44e6f6465a26e31"));
  EXPECT_EQ(std::get<Alive>(out.at(0)).vsn, Vsn{});
}

TEST(HashicorpCodec, RoundTripsOurMessages) {
  const HashicorpCodec codec;
  for (const Message& m : wire::test::sample_messages()) {
    SCOPED_TRACE(m.index());
    const auto out = decode_ok(codec.encode(m));
    ASSERT_EQ(out.size(), 1u);
    if (const auto* b = std::get_if<UserBroadcast>(&m)) {
      // No such message in this format: it travels as a plain user message.
      EXPECT_TRUE(same(out[0], Message{UserMsg{b->payload}}));
      continue;
    }
    EXPECT_TRUE(same(out[0], m));
    if (std::holds_alternative<Ping>(m) || std::holds_alternative<Ack>(m) || std::holds_alternative<PushPull>(m) ||
        std::holds_alternative<UserMsg>(m) || std::holds_alternative<ErrResp>(m)) {
      const auto s = decode_ok(codec.encode_stream(m), true);
      ASSERT_EQ(s.size(), 1u);
      EXPECT_TRUE(same(s[0], m));
    }
  }
}

TEST(HashicorpCodec, APortWithoutAnAddressHasNoAddressBytes) {
  // Go writes a nil net.IP as nil, not as 16 zero bytes.
  const HashicorpCodec codec;
  Address port_only;
  port_only.port = 7946;
  const Bytes b = codec.encode(Alive{1, "n1", port_only, {}, kVsn});
  EXPECT_EQ(hex(Bytes(b.begin(), b.begin() + 8)), "0486a441646472c0");
  const auto out = decode_ok(b);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<Alive>(out[0]).addr, port_only);
}

TEST(HashicorpCodec, EveryTruncationIsAnError) {
  for (const std::string name : {"ping_source", "indirect_ping", "ack_payload", "nack", "suspect", "alive", "dead", "err",
                                 "push_pull", "push_pull_empty", "compound", "compressed_ping"}) {
    const Bytes full = golden_msg(name);
    for (size_t n = 0; n < full.size(); ++n) {
      const Status s = decode_status(Bytes(full.begin(), full.begin() + static_cast<ptrdiff_t>(n)));
      EXPECT_FALSE(s.ok()) << name << " cut to " << n;
    }
  }
  const Bytes us = golden_msg("user_stream");
  for (size_t n = 0; n < us.size(); ++n)
    EXPECT_FALSE(decode_status(Bytes(us.begin(), us.begin() + static_cast<ptrdiff_t>(n)), true).ok()) << n;
}

TEST(HashicorpCodec, RefusesMalformedMessages) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"empty", ""},
      {"unknown type", "63"},
      {"encrypt type inside", "0a00"},
      {"not a map", "0092a26e3201"},
      {"key not a string", "008101a26e32"},
      {"SeqNo negative", "0081a55365714e6fff"},
      {"SeqNo over 32 bits", "0081a55365714e6fcf0000000100000000"},
      {"SourcePort over 16 bits", "0081aa536f75726365506f7274ce00011170"},
      {"Node not a string", "0081a44e6f646501"},
      {"Nack not a bool", "0181a44e61636b01"},
      {"Addr of 5 bytes", "0481a441646472a50a00000101"},
      {"State 4", "0683a44a6f696ec2a54e6f64657301ac5573657253746174654c656e0081a5537461746504"},
      {"Nodes negative", "0681a54e6f646573ff"},
      {"float", "0081a55365714e6fcb3ff0000000000000"},
      {"bytes after the map", "0081a55365714e6f0100"},
      {"user state longer than said", "0683a44a6f696ec2a54e6f64657300ac5573657253746174654c656e0000"},
      {"compound missing count", "07"},
      {"compound truncated len slice", "070200"},
      {"compress unknown algorithm", "0982a4416c676f01a3427566a3000302"},
      {"compress garbage", "0982a4416c676f00a3427566a3ffffff"},
  };
  for (const auto& [what, hx] : cases) {
    const Status s = decode_status(unhex(hx.empty() ? "-" : hx));
    EXPECT_FALSE(s.ok()) << what;
  }
  // Streams carry only ping, ack, push/pull, user messages and err.
  EXPECT_FALSE(decode_status(golden_msg("suspect"), true).ok());
  EXPECT_FALSE(decode_status(golden_msg("compound"), true).ok());
  EXPECT_FALSE(decode_status(unhex("0881aa557365724d73674c656e0568656c6c"), true).ok());  // 4 of 5 bytes
}

TEST(HashicorpCodec, KeepsTheGoodPartsOfABadCompound) {
  const HashicorpCodec codec;
  const Bytes good = codec.encode(Nack{5});
  const Bytes packed = codec.pack({good, unhex("0081a44e6f646501"), good});
  std::vector<Message> out;
  EXPECT_FALSE(codec.decode(packed, out).ok());
  EXPECT_EQ(out.size(), 2u);
  // A part whose length runs past the end: the parts before it are kept (as Go).
  Bytes cut = codec.pack({good, good});
  cut.pop_back();
  out.clear();
  EXPECT_FALSE(codec.decode(cut, out).ok());
  EXPECT_EQ(out.size(), 1u);
}

TEST(HashicorpCodec, MsgpackBombsAreRefusedCheaply) {
  // An unknown key holding an array that claims 2^32-1 entries (and a map that does).
  Status s = decode_status(unhex("0082a55365714e6f01a3426f6ddd" "ffffffff"));
  EXPECT_EQ(s.code, Errc::too_large) << s.message;
  s = decode_status(unhex("0082a55365714e6f01a3426f6ddf" "ffffffff"));
  EXPECT_EQ(s.code, Errc::too_large) << s.message;
  // Nesting 100 arrays deep.
  std::string deep = "0082a55365714e6f01a3426f6d";
  for (int i = 0; i < 100; ++i) deep += "91";
  deep += "01";
  s = decode_status(unhex(deep));
  EXPECT_EQ(s.code, Errc::too_large) << s.message;
  // A raw32 claiming 4 GiB in a small message.
  s = decode_status(unhex("0081a44e6f6465dbffffffff6e32"));
  EXPECT_FALSE(s.ok());
  // A push/pull header claiming 2^30 nodes, and a user message of 2^40 bytes.
  s = decode_status(unhex("0681a54e6f646573ce40000000"), true);
  EXPECT_EQ(s.code, Errc::too_large) << s.message;
  s = decode_status(unhex("0881aa557365724d73674c656ecf0000010000000000"), true);
  EXPECT_EQ(s.code, Errc::too_large) << s.message;
  // A push/pull header claiming many nodes with no bytes for them fails without
  // allocating for the claim.
  s = decode_status(unhex("0681a54e6f646573ce000fffff"), true);
  EXPECT_FALSE(s.ok());
}

Bytes compress_msg(const Bytes& inner) {
  const Bytes z = lzw_compress(inner);
  Bytes out = unhex("0982a4416c676f00a3427566db");
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(z.size() >> shift));
  out.insert(out.end(), z.begin(), z.end());
  return out;
}

TEST(HashicorpCodec, LzwBombsAreRefused) {
  // A user message of 1 MiB of zeros compresses to a few KiB; a datagram may inflate to
  // 64 KiB in total.
  Bytes user(1u << 20, 0);
  user[0] = static_cast<uint8_t>(MsgType::user);
  const Bytes bomb = compress_msg(user);
  ASSERT_LT(bomb.size(), 12000u);
  Status s = decode_status(bomb);
  EXPECT_EQ(s.code, Errc::too_large) << s.message;
  // The budget is per datagram, not per compressMsg: 40 parts of 4 KiB each.
  const HashicorpCodec codec;
  Bytes small(4096, 0);
  small[0] = static_cast<uint8_t>(MsgType::user);
  const Bytes part = compress_msg(small);
  std::vector<Message> out;
  EXPECT_TRUE(codec.decode(part, out).ok());
  out.clear();
  s = codec.decode(codec.pack(std::vector<Bytes>(40, part)), out);
  EXPECT_EQ(s.code, Errc::too_large) << s.message;
  EXPECT_LT(out.size(), 17u);
  // Streams inflate up to their own limit.
  CodecLimits tight;
  tight.max_inflated_stream = 1000;
  EXPECT_EQ(decode_status(compress_msg(golden_msg("user_stream")), true, tight).code, Status{}.code);
  Bytes big_user = HashicorpCodec().encode_stream(UserMsg{Bytes(2000, 7)});
  EXPECT_EQ(decode_status(compress_msg(big_user), true, tight).code, Errc::too_large);
}

TEST(HashicorpCodec, NestingIsBounded) {
  Bytes m = HashicorpCodec().encode(Nack{1});
  for (int i = 0; i < 4; ++i) m = compress_msg(m);
  EXPECT_TRUE(decode_status(m).ok());
  m = compress_msg(m);
  const Status s = decode_status(m);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message.find("nested"), std::string::npos) << s.message;
  // Streams take one compressMsg only (Go's readStream).
  EXPECT_FALSE(decode_status(compress_msg(compress_msg(golden_msg("ping_min"))), true).ok());
}

}  // namespace
}  // namespace memberlist::wire::hashicorp::test

namespace memberlist::wire::hashicorp::test {
namespace {

// Every stream message Go writes, as a TCP reader sees it arrive.
std::vector<Bytes> go_stream_messages() {
  std::vector<Bytes> out;
  for (const char* name : {"push_pull", "push_pull_empty", "user_stream", "ping_min", "ack_payload", "err",
                           "compressed_ping"})
    out.push_back(golden_msg(name));
  for (const char* name : {"stream_v1_label", "stream_v0_compressed"}) out.push_back(unhex(golden("frame").at(name).at(0)));
  return out;
}

TEST(HashicorpStreamReader, FindsTheEndOfEveryMessageGoWrites) {
  const HashicorpCodec codec;
  for (const Bytes& full : go_stream_messages()) {
    SCOPED_TRACE(hex(full).substr(0, 20));
    for (size_t n = 0; n < full.size(); ++n) {
      size_t size = 99, need = 0;
      const Status s = codec.stream_message_size(std::span(full).first(n), size, need);
      ASSERT_TRUE(s.ok()) << n << ": " << s.message;
      EXPECT_EQ(size, 0u) << n;
      EXPECT_GT(need, n);
      EXPECT_LE(need, full.size());
    }
    Bytes two = full;
    two.insert(two.end(), full.begin(), full.end());
    size_t size = 0, need = 0;
    ASSERT_TRUE(codec.stream_message_size(two, size, need).ok());
    EXPECT_EQ(size, full.size());
  }
}

TEST(HashicorpStreamReader, SplitsAStreamArrivingInSmallPieces) {
  // Several messages back to back, read 7 bytes at a time, as a connection delivers them.
  const HashicorpCodec codec;
  const auto msgs = go_stream_messages();
  Bytes wire;
  for (const Bytes& m : msgs) wire.insert(wire.end(), m.begin(), m.end());
  Bytes buffered;
  std::vector<Bytes> got;
  for (size_t pos = 0; pos < wire.size();) {
    const size_t n = std::min<size_t>(7, wire.size() - pos);
    buffered.insert(buffered.end(), wire.begin() + static_cast<ptrdiff_t>(pos), wire.begin() + static_cast<ptrdiff_t>(pos + n));
    pos += n;
    for (;;) {
      size_t size = 0, need = 0;
      ASSERT_TRUE(codec.stream_message_size(buffered, size, need).ok());
      if (size == 0) break;
      got.emplace_back(buffered.begin(), buffered.begin() + static_cast<ptrdiff_t>(size));
      buffered.erase(buffered.begin(), buffered.begin() + static_cast<ptrdiff_t>(size));
    }
  }
  EXPECT_TRUE(buffered.empty());
  EXPECT_EQ(got, msgs);
}

TEST(HashicorpStreamReader, RefusesBrokenOrOversizedStreams) {
  const HashicorpCodec codec;
  size_t size = 0, need = 0;
  auto probe = [&](const std::string& hx, CodecLimits limits = {}) {
    return HashicorpCodec(limits).stream_message_size(unhex(hx), size, need);
  };
  EXPECT_EQ(probe("03").code, Errc::protocol);                       // suspect: not a stream message
  EXPECT_EQ(probe("00c1").code, Errc::protocol);                     // 0xc1 is never valid msgpack
  EXPECT_EQ(probe("0a01400001").code, Errc::too_large);              // encrypted, over 20 MiB
  EXPECT_EQ(probe("0881aa557365724d73674c656ecf0000010000000000").code, Errc::too_large);  // UserMsgLen 2^40
  EXPECT_EQ(probe("0681a54e6f646573ce40000000").code, Errc::too_large);  // Nodes 2^30
  CodecLimits small;
  small.max_stream_message = 100;
  EXPECT_EQ(probe("0881aa557365724d73674c656eccc8", small).code, Errc::too_large);  // 200 bytes
  // A raw string claiming 256 bytes: "read more" while the buffer is under the limit, then
  // refused (the reader never buffers more than max_stream_message).
  std::string claim = "0081a44e6f6465da0100";
  ASSERT_TRUE(probe(claim, small).ok());
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(need, claim.size() / 2 + 1);
  claim += std::string(2 * (99 - claim.size() / 2), 'a');
  ASSERT_TRUE(probe(claim, small).ok());  // 99 bytes buffered
  EXPECT_EQ(need, 100u);
  claim += "aa";
  EXPECT_EQ(probe(claim, small).code, Errc::too_large);  // 100 buffered, the message is longer
}

}  // namespace
}  // namespace memberlist::wire::hashicorp::test
