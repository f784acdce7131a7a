// hashicorp framing: CRC, compressMsg, label header and AES-GCM (versions 0 and 1), against
// bytes Go wrote (golden/vectors.txt) and against malformed input.
#include "wire/hashicorp/framing.h"

#include <gtest/gtest.h>

#include "golden.h"
#include "wire/hashicorp/codec.h"

namespace memberlist::wire::hashicorp::test {
namespace {

using core::Errc;
using core::Status;

Bytes golden_of(const std::string& kind, const std::string& name, size_t field = 0) {
  return unhex(golden(kind).at(name).at(field));
}

const Bytes kPingMin = unhex("0082a44e6f6465a26e32a55365714e6f01");  // ping{SeqNo 1, Node "n2"}

Bytes seq(size_t n, uint8_t from) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(from + i);
  return b;
}

Bytes of(std::string_view s) { return Bytes(s.begin(), s.end()); }

void expect_ping_min(std::span<const uint8_t> data, bool stream) {
  const HashicorpCodec codec;
  std::vector<core::Message> out;
  const Status s = stream ? codec.decode_stream(data, out) : codec.decode(data, out);
  ASSERT_TRUE(s.ok()) << s.message;
  ASSERT_EQ(out.size(), 1u);
  const auto& p = std::get<core::Ping>(out[0]);
  EXPECT_EQ(p.seq, 1u);
  EXPECT_EQ(p.node, "n2");
}

TEST(HashicorpFraming, CrcAsGoWritesIt) {
  const Bytes go = golden_of("msg", "crc_ping");
  EXPECT_EQ(hex(add_crc(kPingMin)), hex(go));
  std::span<const uint8_t> msg;
  ASSERT_TRUE(check_crc(go, msg).ok());
  EXPECT_EQ(Bytes(msg.begin(), msg.end()), kPingMin);
  // A flipped bit anywhere after the type byte is caught.
  for (size_t i = 1; i < go.size(); ++i) {
    Bytes bad = go;
    bad[i] ^= 0x10;
    EXPECT_EQ(check_crc(bad, msg).code, Errc::protocol) << i;
  }
  // Without the prefix (or too short for one) the packet is passed on as it is (as Go).
  ASSERT_TRUE(check_crc(kPingMin, msg).ok());
  EXPECT_EQ(msg.size(), kPingMin.size());
  const Bytes short_one{12, 1, 2, 3};
  ASSERT_TRUE(check_crc(short_one, msg).ok());
  EXPECT_EQ(msg.size(), 4u);
}

TEST(HashicorpFraming, CompressAsGoWritesIt) {
  EXPECT_EQ(hex(compress_payload(kPingMin)), hex(golden_of("msg", "compressed_ping")));
  // Datagrams keep the compressed form only when it is shorter (not for a small ping).
  EXPECT_EQ(compress_if_smaller(kPingMin), kPingMin);
  const HashicorpCodec codec;
  const Bytes big = codec.encode(core::UserMsg{Bytes(3000, 'a')});
  const Bytes c = compress_if_smaller(big);
  EXPECT_LT(c.size(), big.size());
  EXPECT_EQ(c[0], static_cast<uint8_t>(MsgType::compress));
  std::vector<core::Message> out;
  ASSERT_TRUE(codec.decode(c, out).ok());
  EXPECT_EQ(std::get<core::UserMsg>(out.at(0)).payload, Bytes(3000, 'a'));
}

TEST(HashicorpFraming, LabelHeader) {
  Bytes framed;
  ASSERT_TRUE(add_label_header("prod", kPingMin, framed).ok());
  EXPECT_EQ(hex(Bytes(framed.begin(), framed.begin() + 6)), "f40470726f64");
  EXPECT_EQ(framed.size(), label_overhead("prod") + kPingMin.size());
  std::string label;
  std::span<const uint8_t> rest;
  ASSERT_TRUE(remove_label_header(framed, label, rest).ok());
  EXPECT_EQ(label, "prod");
  EXPECT_EQ(Bytes(rest.begin(), rest.end()), kPingMin);
  // No label: nothing added, nothing removed.
  ASSERT_TRUE(add_label_header("", kPingMin, framed).ok());
  EXPECT_EQ(framed, kPingMin);
  ASSERT_TRUE(remove_label_header(kPingMin, label, rest).ok());
  EXPECT_TRUE(label.empty());
  EXPECT_EQ(rest.size(), kPingMin.size());
  // Broken headers and an over-long label.
  for (const char* bad : {"f4", "f400", "f40461", "f4ff00"})
    EXPECT_EQ(remove_label_header(unhex(bad), label, rest).code, Errc::protocol) << bad;
  EXPECT_EQ(add_label_header(std::string(256, 'x'), kPingMin, framed).code, Errc::invalid);
  ASSERT_TRUE(add_label_header(std::string(255, 'x'), kPingMin, framed).ok());
  ASSERT_TRUE(remove_label_header(framed, label, rest).ok());
  EXPECT_EQ(label.size(), 255u);
}

TEST(HashicorpFraming, DecryptsWhatGoEncrypted) {
  const auto vectors = golden("enc");
  ASSERT_EQ(vectors.size(), 5u);
  for (const auto& [name, f] : vectors) {
    SCOPED_TRACE(name);
    ASSERT_EQ(f.size(), 5u);
    const auto version = static_cast<uint8_t>(std::stoi(f[0]));
    const Bytes key = unhex(f[1]), aad = unhex(f[2]), pt = unhex(f[3]), go = unhex(f[4]);
    EXPECT_EQ(go.size(), encrypted_length(version, pt.size()));
    EXPECT_LE(go.size() - pt.size(), encrypt_overhead(version));
    Bytes out;
    // The right key second: every installed key is tried.
    const std::vector<Bytes> keys{Bytes(key.size(), 0x55), key};
    Status s = decrypt_payload(keys, go, aad, out);
    ASSERT_TRUE(s.ok()) << s.message;
    EXPECT_EQ(out, pt);
    EXPECT_EQ(decrypt_payload(std::vector<Bytes>{keys[0]}, go, aad, out).code, Errc::rejected);
    Bytes other_aad = aad;
    other_aad.push_back('x');
    EXPECT_EQ(decrypt_payload(keys, go, other_aad, out).code, Errc::rejected);
    Bytes tampered = go;
    tampered[tampered.size() / 2] ^= 1;
    EXPECT_EQ(decrypt_payload(keys, tampered, aad, out).code, Errc::rejected);
  }
}

TEST(HashicorpFraming, EncryptsInGosLayout) {
  for (uint8_t version : {uint8_t{0}, uint8_t{1}}) {
    for (size_t key_size : {16u, 24u, 32u}) {
      for (size_t n : {0u, 1u, 15u, 16u, 17u, 1000u}) {
        const Bytes key = seq(key_size, 3), msg = seq(n, 9), aad = of("lbl");
        Bytes out{0xee};  // appended to
        ASSERT_TRUE(encrypt_payload(version, key, msg, aad, out).ok());
        ASSERT_EQ(out.size(), 1 + encrypted_length(version, n));
        EXPECT_EQ(out[1], version);
        Bytes pt;
        const Status s = decrypt_payload(std::vector<Bytes>{key}, std::span(out).subspan(1), aad, pt);
        ASSERT_TRUE(s.ok()) << s.message;
        EXPECT_EQ(pt, msg);
      }
    }
  }
  Bytes out{1, 2};
  EXPECT_EQ(encrypt_payload(1, seq(15, 0), kPingMin, {}, out).code, Errc::invalid);
  EXPECT_EQ(encrypt_payload(2, seq(16, 0), kPingMin, {}, out).code, Errc::invalid);
  EXPECT_EQ(out, (Bytes{1, 2}));  // left as it was
  EXPECT_EQ(encrypt_overhead(0), 45u);
  EXPECT_EQ(encrypt_overhead(1), 29u);
}

TEST(HashicorpFraming, RefusesBadCiphertexts) {
  const std::vector<Bytes> keys{seq(16, 1)};
  Bytes out;
  EXPECT_EQ(decrypt_payload(keys, Bytes{}, {}, out).code, Errc::protocol);
  EXPECT_EQ(decrypt_payload(keys, Bytes(60, 2), {}, out).code, Errc::protocol);  // version 2
  EXPECT_EQ(decrypt_payload(keys, Bytes(28, 1), {}, out).code, Errc::protocol);  // < 29
  Bytes v0(44, 0);
  EXPECT_EQ(decrypt_payload(keys, v0, {}, out).code, Errc::protocol);  // < 45
  // The version byte is not authenticated (as in Go): a version-1 payload relabelled 0 opens,
  // and its last byte is then read as padding. 0 or more than 16 is refused.
  for (uint8_t last : {uint8_t{0}, uint8_t{17}}) {
    Bytes pt = seq(32, 1);
    pt.back() = last;
    Bytes enc;
    ASSERT_TRUE(encrypt_payload(1, keys[0], pt, {}, enc).ok());
    enc[0] = 0;
    EXPECT_EQ(decrypt_payload(keys, enc, {}, out).code, Errc::protocol) << int{last};
  }
}

// The whole datagram path as Go sends it: label header, encryption with the label as
// associated data, CRC, then the message.
TEST(HashicorpFraming, OpensGosLabelledEncryptedCrcPacket) {
  const Bytes wire = golden_of("frame", "packet_label_crc_v1");
  EXPECT_EQ(wire.size(), 57u);
  std::string label;
  std::span<const uint8_t> rest;
  ASSERT_TRUE(remove_label_header(wire, label, rest).ok());
  EXPECT_EQ(label, "prod");
  Bytes plain;
  ASSERT_TRUE(decrypt_payload(std::vector<Bytes>{seq(16, 1)}, rest, of(label), plain).ok());
  std::span<const uint8_t> msg;
  ASSERT_TRUE(check_crc(plain, msg).ok());
  EXPECT_EQ(msg.size(), kPingMin.size());
  expect_ping_min(msg, false);
  // Without the label the associated data differs and nothing opens.
  EXPECT_EQ(decrypt_payload(std::vector<Bytes>{seq(16, 1)}, rest, {}, plain).code, Errc::rejected);
}

TEST(HashicorpFraming, OpensGosEncryptedStreams) {
  Bytes plain;
  const Bytes v1 = golden_of("frame", "stream_v1_label");
  EXPECT_EQ(hex(Bytes(v1.begin(), v1.begin() + 5)), "0a0000002e");
  Status s = decrypt_stream(std::vector<Bytes>{seq(16, 1)}, v1, "prod", plain);
  ASSERT_TRUE(s.ok()) << s.message;
  expect_ping_min(plain, true);
  EXPECT_EQ(decrypt_stream(std::vector<Bytes>{seq(16, 1)}, v1, "dev", plain).code, Errc::rejected);

  const Bytes v0 = golden_of("frame", "stream_v0_compressed");
  s = decrypt_stream(std::vector<Bytes>{seq(32, 0x40)}, v0, "", plain);
  ASSERT_TRUE(s.ok()) << s.message;
  EXPECT_EQ(plain[0], static_cast<uint8_t>(MsgType::compress));
  expect_ping_min(plain, true);
}

TEST(HashicorpFraming, EncryptedStreamRoundTripAndBounds) {
  const Bytes key = seq(24, 7);
  const std::vector<Bytes> keys{key};
  for (uint8_t version : {uint8_t{0}, uint8_t{1}}) {
    Bytes stream;
    ASSERT_TRUE(encrypt_stream(version, key, kPingMin, "prod", stream).ok());
    EXPECT_EQ(stream.size(), kStreamEncryptHeader + encrypted_length(version, kPingMin.size()));
    size_t len = 0;
    ASSERT_TRUE(parse_stream_length(std::span(stream).first<kStreamEncryptHeader>(), kMaxEncryptedStream, len).ok());
    EXPECT_EQ(len, stream.size() - kStreamEncryptHeader);
    Bytes plain;
    ASSERT_TRUE(decrypt_stream(keys, stream, "prod", plain).ok());
    EXPECT_EQ(plain, kPingMin);
    // The length is authenticated: a wrong one is refused before or by GCM.
    Bytes cut = stream;
    cut.pop_back();
    EXPECT_EQ(decrypt_stream(keys, cut, "prod", plain).code, Errc::protocol);
    EXPECT_EQ(decrypt_stream(keys, std::span(stream).first(4), "prod", plain).code, Errc::protocol);
  }
  // Over the limit (20 MiB by default), and not an encrypted stream at all.
  size_t len = 0;
  const Bytes huge = unhex("0a01400001");
  EXPECT_EQ(parse_stream_length(std::span(huge).first<kStreamEncryptHeader>(), kMaxEncryptedStream, len).code,
            Errc::too_large);
  const Bytes plain_type = unhex("0601400001");
  EXPECT_EQ(parse_stream_length(std::span(plain_type).first<kStreamEncryptHeader>(), kMaxEncryptedStream, len).code,
            Errc::protocol);
  Bytes out;
  EXPECT_EQ(decrypt_stream(keys, unhex("0a00000100"), "", out, 255).code, Errc::too_large);
}

}  // namespace
}  // namespace memberlist::wire::hashicorp::test
