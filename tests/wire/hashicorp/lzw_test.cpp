// LZW against Go's compress/lzw (LSB, 8-bit literals): the bytes Go wrote, round trips,
// broken streams and the output limit.
#include "wire/hashicorp/lzw.h"

#include <gtest/gtest.h>

#include "golden.h"

namespace memberlist::wire::hashicorp::test {
namespace {

constexpr size_t kNoLimit = SIZE_MAX;

Bytes noise(size_t n, uint32_t seed) {
  Bytes b(n);
  for (auto& x : b) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    x = static_cast<uint8_t>(seed);
  }
  return b;
}

// The vectors include inputs long enough for Go's writer to emit Clear when its table fills
// (noise_12000_a256 several times): writing them without that reset fails this test.
TEST(HashicorpLzw, GoVectorsExactly) {
  const auto vectors = golden("lzw");
  ASSERT_GE(vectors.size(), 9u);
  for (const auto& [name, fields] : vectors) {
    SCOPED_TRACE(name);
    ASSERT_EQ(fields.size(), 2u);
    const Bytes in = unhex(fields[0]), go = unhex(fields[1]);
    EXPECT_EQ(hex(lzw_compress(in)), fields[1]);
    Bytes out{1, 2, 3};
    const core::Status s = lzw_decompress(go, kNoLimit, out);
    ASSERT_TRUE(s.ok()) << s.message;
    EXPECT_EQ(out, in);
  }
}

TEST(HashicorpLzw, RoundTrip) {
  for (size_t n : {0u, 1u, 2u, 255u, 256u, 4095u, 4096u, 70000u}) {
    for (const Bytes& in : {noise(n, 3), Bytes(n, 'x'), Bytes(noise(n / 2, 9)) }) {
      Bytes out;
      const core::Status s = lzw_decompress(lzw_compress(in), kNoLimit, out);
      ASSERT_TRUE(s.ok()) << n << ": " << s.message;
      EXPECT_EQ(out, in) << n;
    }
  }
}

TEST(HashicorpLzw, StreamWithoutLeadingClear) {
  // Older writers did not start with Clear. Drop it: the remaining codes are the same
  // 9-bit codes shifted by 9 bits.
  const Bytes in{'a', 'b', 'a', 'b', 'a', 'b'};
  const Bytes with = lzw_compress(in);
  // Re-pack the codes without the first one.
  uint64_t bits = 0;
  size_t nbits = 0;
  for (size_t i = 0; i < with.size(); ++i) bits |= uint64_t{with[i]} << (8 * i);
  nbits = with.size() * 8;
  ASSERT_EQ(bits & 0x1ff, 256u);
  bits >>= 9;
  nbits -= 9;
  Bytes without;
  for (size_t i = 0; i * 8 < nbits; ++i) without.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  Bytes out;
  ASSERT_TRUE(lzw_decompress(without, kNoLimit, out).ok());
  EXPECT_EQ(out, in);
}

TEST(HashicorpLzw, TruncatedStreamIsAnError) {
  const Bytes in = noise(3000, 5);
  const Bytes c = lzw_compress(in);
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, c.size() / 2, c.size() - 2}) {
    Bytes out;
    const core::Status s = lzw_decompress(std::span(c).first(n), kNoLimit, out);
    EXPECT_EQ(s.code, core::Errc::protocol) << n;
    EXPECT_FALSE(s.message.empty());
  }
}

TEST(HashicorpLzw, InvalidCodeIsAnError) {
  // Clear, then code 300 (not yet in the table: only 258 would be next), 9 bits each.
  const uint32_t bits = 256 | 300u << 9;
  const Bytes bad{static_cast<uint8_t>(bits), static_cast<uint8_t>(bits >> 8), static_cast<uint8_t>(bits >> 16)};
  Bytes out;
  const core::Status s = lzw_decompress(bad, kNoLimit, out);
  EXPECT_EQ(s.code, core::Errc::protocol);
  EXPECT_NE(s.message.find("invalid code"), std::string::npos) << s.message;
}

TEST(HashicorpLzw, GarbageNeverCrashes) {
  // Whatever the bytes, the decoder returns (ok or an error) and keeps to the limit.
  size_t errors = 0;
  for (uint32_t seed = 1; seed < 300; ++seed) {
    const Bytes junk = noise(1 + seed % 200, seed);
    Bytes out;
    const core::Status s = lzw_decompress(junk, 1000, out);
    if (!s.ok()) ++errors;
    EXPECT_LE(out.size(), 1000u);
  }
  EXPECT_GT(errors, 250u);
}

TEST(HashicorpLzw, OutputLimitIsHonoured) {
  const Bytes in(100000, 0);  // a bomb in miniature: about 450 bytes inflate to 100,000
  const Bytes c = lzw_compress(in);
  ASSERT_LT(c.size(), 1000u);
  Bytes out;
  EXPECT_TRUE(lzw_decompress(c, in.size(), out).ok());
  EXPECT_EQ(out.size(), in.size());
  const core::Status s = lzw_decompress(c, in.size() - 1, out);
  EXPECT_EQ(s.code, core::Errc::too_large);
  EXPECT_LE(out.size(), in.size() - 1);
  EXPECT_EQ(lzw_decompress(lzw_compress(Bytes{1}), 0, out).code, core::Errc::too_large);
  EXPECT_TRUE(lzw_decompress(lzw_compress(Bytes{}), 0, out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(HashicorpLzw, TrailingBytesAfterEndAreIgnored) {
  Bytes c = lzw_compress(Bytes{'h', 'i'});
  c.push_back(0xff);
  c.push_back(0x00);
  Bytes out;
  ASSERT_TRUE(lzw_decompress(c, kNoLimit, out).ok());
  EXPECT_EQ(out, (Bytes{'h', 'i'}));
}

}  // namespace
}  // namespace memberlist::wire::hashicorp::test
