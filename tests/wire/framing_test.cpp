// Datagram and stream framing.
#include <array>

#include <gtest/gtest.h>

#include "test_util.h"

namespace memberlist::wire::test {
namespace {

const FramingOptions kOpt{};

TEST(WireFraming, PacketRoundTrip) {
  for (size_t n : {0u, 1u, 100u, 65000u}) {
    const Bytes payload = bytes_of(n);
    const Bytes sealed = seal_packet(kOpt, payload);
    EXPECT_GT(sealed.size(), payload.size());
    Bytes opened{9, 9};
    const Status s = open_packet(kOpt, sealed, opened);
    ASSERT_TRUE(s.ok()) << s.message;
    EXPECT_EQ(opened, payload);
  }
}

TEST(WireFraming, PacketCarriesCodecOutput) {
  const auto codec = make_flatbuffers_codec();
  const Bytes sealed = seal_packet(kOpt, codec->encode(Nack{42}));
  Bytes payload;
  ASSERT_TRUE(open_packet(kOpt, sealed, payload).ok());
  std::vector<Message> out;
  ASSERT_TRUE(codec->decode(payload, out).ok());
  EXPECT_EQ(std::get<Nack>(out.at(0)).seq, 42u);
}

TEST(WireFraming, PacketRejectsGarbage) {
  Bytes payload;
  EXPECT_EQ(open_packet(kOpt, Bytes{}, payload).code, Errc::protocol);
  const Bytes sealed = seal_packet(kOpt, bytes_of(10));
  // Wrong magic (e.g. a hashicorp/memberlist ping, type byte 0).
  Bytes bad = sealed;
  bad[0] = 0x00;
  Status s = open_packet(kOpt, bad, payload);
  EXPECT_EQ(s.code, Errc::protocol);
  EXPECT_NE(s.message.find("magic"), std::string::npos) << s.message;
  // Magic only: no layer tag.
  s = open_packet(kOpt, Bytes(sealed.begin(), sealed.begin() + 1), payload);
  EXPECT_EQ(s.code, Errc::protocol);
  // An unknown layer.
  bad = sealed;
  bad[1] = 0xee;
  s = open_packet(kOpt, bad, payload);
  EXPECT_EQ(s.code, Errc::protocol);
  EXPECT_NE(s.message.find("layer 238"), std::string::npos) << s.message;
}

TEST(WireFraming, StreamRoundTrip) {
  const Bytes payload = bytes_of(70000);
  const Bytes sealed = seal_stream_message(kOpt, payload);
  ASSERT_GE(sealed.size(), kStreamHeaderSize);
  size_t body_len = 0;
  const Status h = parse_stream_header(kOpt, std::span<const uint8_t, kStreamHeaderSize>(sealed.data(), kStreamHeaderSize), body_len);
  ASSERT_TRUE(h.ok()) << h.message;
  EXPECT_EQ(body_len, sealed.size() - kStreamHeaderSize);
  // Big-endian length.
  EXPECT_EQ(sealed[0], 0);
  EXPECT_EQ(sealed[1], (body_len >> 16) & 0xff);
  EXPECT_EQ(sealed[2], (body_len >> 8) & 0xff);
  EXPECT_EQ(sealed[3], body_len & 0xff);
  Bytes opened;
  const Status s = open_stream_message(kOpt, std::span<const uint8_t>(sealed).subspan(kStreamHeaderSize), opened);
  ASSERT_TRUE(s.ok()) << s.message;
  EXPECT_EQ(opened, payload);
}

TEST(WireFraming, StreamHeaderRefusesOversizedLength) {
  FramingOptions opt;
  opt.max_stream_message = 1000;
  size_t len = 12345;
  const std::array<uint8_t, 4> at_limit{0x00, 0x00, 0x03, 0xe8};  // 1000
  ASSERT_TRUE(parse_stream_header(opt, at_limit, len).ok());
  EXPECT_EQ(len, 1000u);
  const std::array<uint8_t, 4> over{0x00, 0x00, 0x03, 0xe9};  // 1001
  Status s = parse_stream_header(opt, over, len);
  EXPECT_EQ(s.code, Errc::too_large);
  EXPECT_NE(s.message.find("1001"), std::string::npos) << s.message;
  const std::array<uint8_t, 4> huge{0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(parse_stream_header(kOpt, huge, len).code, Errc::too_large);
  // Too short to hold even the frame header.
  const std::array<uint8_t, 4> zero{0, 0, 0, 0};
  EXPECT_EQ(parse_stream_header(kOpt, zero, len).code, Errc::protocol);
}

TEST(WireFraming, StreamBodyChecks) {
  FramingOptions opt;
  opt.max_stream_message = 64;
  Bytes payload;
  const Bytes sealed = seal_stream_message(kOpt, bytes_of(100));
  const auto body = std::span<const uint8_t>(sealed).subspan(kStreamHeaderSize);
  EXPECT_EQ(open_stream_message(opt, body, payload).code, Errc::too_large);
  EXPECT_TRUE(open_stream_message(kOpt, body, payload).ok());
  EXPECT_EQ(open_stream_message(kOpt, body.subspan(1), payload).code, Errc::protocol);
  EXPECT_EQ(open_stream_message(kOpt, std::span<const uint8_t>(), payload).code, Errc::protocol);
}

}  // namespace
}  // namespace memberlist::wire::test
