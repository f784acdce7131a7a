// The security and integrity layers of the framing: label, CRC32, compression, AES-GCM
// encryption with a keyring, the plaintext -> encrypted upgrade knobs, and every bound.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <random>
#include <string_view>

#include <boost/crc.hpp>
#include <gtest/gtest.h>

#include "test_util.h"
#include "wire/compression.h"
#include "wire/crypto.h"

namespace memberlist::wire::test {
namespace {

std::shared_ptr<Keyring> ring_of(std::initializer_list<Bytes> keys) {
  auto r = std::make_shared<Keyring>();
  for (const Bytes& k : keys) EXPECT_TRUE(r->install(k).ok());
  return r;
}

const Bytes kKey1 = bytes_of(32, 1);
const Bytes kKey2 = bytes_of(32, 2);

// Compressible but not trivial.
Bytes text_of(size_t n) {
  const std::string_view words = "alive suspect dead node-17 10.0.0.1:7946 incarnation ";
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(words[(i * 7 + i / 13) % words.size()]);
  return b;
}

bool contains(const Bytes& hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// Seals and opens one payload both as a datagram and as a stream message.
void expect_round_trip(const FramingOptions& tx, const FramingOptions& rx, const Bytes& payload) {
  Bytes sealed, opened;
  FrameStatus s = seal_packet(tx, payload, sealed);
  ASSERT_TRUE(s.ok()) << s.message;
  s = open_packet(rx, sealed, opened);
  ASSERT_TRUE(s.ok()) << s.message;
  EXPECT_EQ(opened, payload);

  Bytes message;
  s = seal_stream_message(tx, payload, message);
  ASSERT_TRUE(s.ok()) << s.message;
  size_t len = 0;
  s = parse_stream_header(rx, std::span<const uint8_t, kStreamHeaderSize>(message.data(), kStreamHeaderSize), len);
  ASSERT_TRUE(s.ok()) << s.message;
  ASSERT_EQ(len, message.size() - kStreamHeaderSize);
  opened.clear();
  s = open_stream_message(rx, std::span<const uint8_t>(message).subspan(kStreamHeaderSize), opened);
  ASSERT_TRUE(s.ok()) << s.message;
  EXPECT_EQ(opened, payload);
}

FrameStatus open_stream(const FramingOptions& rx, const Bytes& message, Bytes& payload) {
  return open_stream_message(rx, std::span<const uint8_t>(message).subspan(kStreamHeaderSize), payload);
}

TEST(WireSecurity, RoundTripEveryCombination) {
  const std::vector<Bytes> payloads = {Bytes{}, bytes_of(1), bytes_of(200), text_of(3000), bytes_of(70000)};
  for (const char* label : {"", "prod", "x"}) {
    for (bool crc : {false, true}) {
      for (bool compress : {false, true}) {
        for (size_t key_size : {0u, 16u, 24u, 32u}) {
          SCOPED_TRACE(std::string("label=") + label + " crc=" + std::to_string(crc) +
                       " compress=" + std::to_string(compress) + " key=" + std::to_string(key_size));
          FramingOptions opt;
          opt.label = label;
          opt.crc = crc;
          opt.compress = compress;
          if (key_size) opt.keyring = ring_of({bytes_of(key_size, 5)});
          for (const Bytes& p : payloads) expect_round_trip(opt, opt, p);

          // The overhead is exact for what does not compress, and an upper bound otherwise.
          Bytes sealed;
          ASSERT_TRUE(seal_packet(opt, bytes_of(200), sealed).ok());
          EXPECT_EQ(sealed.size(), 200 + packet_overhead(opt));
          const Bytes text = text_of(3000);
          ASSERT_TRUE(seal_packet(opt, text, sealed).ok());
          if (compress) {
            EXPECT_LT(sealed.size(), text.size() / 2);
          } else {
            EXPECT_EQ(sealed.size(), text.size() + packet_overhead(opt));
          }
        }
      }
    }
  }
}

TEST(WireSecurity, OverheadConstants) {
  FramingOptions opt;
  EXPECT_EQ(packet_overhead(opt), 2u);
  EXPECT_EQ(packet_overhead(opt, true), 2u + 29u);
  opt.label = "prod";
  opt.crc = true;
  EXPECT_EQ(packet_overhead(opt), 2u + 6u + 5u);
  opt.keyring = ring_of({kKey1});
  EXPECT_TRUE(encrypts(opt));
  EXPECT_EQ(packet_overhead(opt), 2u + 6u + 5u + kEncryptionOverhead);
  opt.verify_outgoing = false;
  EXPECT_FALSE(encrypts(opt));
  EXPECT_EQ(packet_overhead(opt), 2u + 6u + 5u);
}

TEST(WireSecurity, DefaultOptionsKeepThePlainFrame) {
  Bytes sealed;
  ASSERT_TRUE(seal_packet(FramingOptions{}, bytes_of(3), sealed).ok());
  Bytes expected{0x4d, 0x01};
  const Bytes p = bytes_of(3);
  expected.insert(expected.end(), p.begin(), p.end());
  EXPECT_EQ(sealed, expected);
}

TEST(WireSecurity, SealedPacketHidesNames) {
  const auto codec = make_flatbuffers_codec();
  const std::string name = "secret-node-name-42";
  const Bytes msg = codec->encode(Alive{7, name, v4(10, 0, 0, 1, 7946), bytes_of(4), {1, 5, 2, 0, 0, 0}});
  FramingOptions plain;
  plain.label = "prod";
  Bytes sealed;
  ASSERT_TRUE(seal_packet(plain, msg, sealed).ok());
  EXPECT_TRUE(contains(sealed, name));  // the search can find it when it is there
  for (bool compress : {false, true}) {
    FramingOptions opt = plain;
    opt.compress = compress;
    opt.crc = true;
    opt.keyring = ring_of({kKey1});
    ASSERT_TRUE(seal_packet(opt, msg, sealed).ok());
    EXPECT_FALSE(contains(sealed, name));
    EXPECT_FALSE(contains(sealed, "secret"));
    Bytes message;
    ASSERT_TRUE(seal_stream_message(opt, msg, message).ok());
    EXPECT_FALSE(contains(message, name));
    Bytes opened;
    ASSERT_TRUE(open_packet(opt, sealed, opened).ok());
    EXPECT_EQ(opened, msg);
  }
}

TEST(WireSecurity, NoncesDiffer) {
  FramingOptions opt;
  opt.keyring = ring_of({kKey1});
  Bytes a, b;
  ASSERT_TRUE(seal_packet(opt, bytes_of(50), a).ok());
  ASSERT_TRUE(seal_packet(opt, bytes_of(50), b).ok());
  EXPECT_NE(a, b);
}

TEST(WireSecurity, WrongKeyNoKeyAndPlaintext) {
  FramingOptions tx, rx;
  tx.keyring = ring_of({kKey1});
  rx.keyring = ring_of({kKey2});
  Bytes sealed, payload, message;
  ASSERT_TRUE(seal_packet(tx, bytes_of(40), sealed).ok());
  ASSERT_TRUE(seal_stream_message(tx, bytes_of(40), message).ok());

  FrameStatus s = open_packet(rx, sealed, payload);
  EXPECT_EQ(s.kind, FrameError::decrypt_failed);
  EXPECT_EQ(s.code, Errc::rejected);
  EXPECT_NE(s.message.find("no installed key"), std::string::npos) << s.message;
  EXPECT_EQ(open_stream(rx, message, payload).kind, FrameError::decrypt_failed);

  // A key of another size is just another wrong key.
  rx.keyring = ring_of({bytes_of(16, 1)});
  EXPECT_EQ(open_packet(rx, sealed, payload).kind, FrameError::decrypt_failed);

  // No keyring, or an empty one.
  for (auto ring : {std::shared_ptr<Keyring>(), std::make_shared<Keyring>()}) {
    rx.keyring = ring;
    s = open_packet(rx, sealed, payload);
    EXPECT_EQ(s.kind, FrameError::decrypt_failed);
    EXPECT_NE(s.message.find("no key is installed"), std::string::npos) << s.message;
    EXPECT_EQ(open_stream(rx, message, payload).kind, FrameError::decrypt_failed);
  }

  // Plaintext to a node with keys (verify_incoming defaults to true).
  ASSERT_TRUE(seal_packet(FramingOptions{}, bytes_of(40), sealed).ok());
  ASSERT_TRUE(seal_stream_message(FramingOptions{}, bytes_of(40), message).ok());
  s = open_packet(tx, sealed, payload);
  EXPECT_EQ(s.kind, FrameError::not_encrypted);
  EXPECT_EQ(s.code, Errc::rejected);
  EXPECT_EQ(open_stream(tx, message, payload).kind, FrameError::not_encrypted);
}

TEST(WireSecurity, LabelMismatch) {
  FramingOptions prod, dev, none;
  prod.label = "prod";
  dev.label = "dev";
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted);
    if (encrypted) prod.keyring = dev.keyring = none.keyring = ring_of({kKey1});
    // {sender, receiver} pairs that must be refused as label mismatches.
    using Pair = std::pair<FramingOptions*, FramingOptions*>;
    for (auto [tx, rx] : {Pair{&prod, &dev}, Pair{&none, &prod}, Pair{&prod, &none}}) {
      Bytes sealed, message, payload;
      ASSERT_TRUE(seal_packet(*tx, bytes_of(10), sealed).ok());
      ASSERT_TRUE(seal_stream_message(*tx, bytes_of(10), message).ok());
      FrameStatus s = open_packet(*rx, sealed, payload);
      EXPECT_EQ(s.kind, FrameError::label_mismatch);
      EXPECT_EQ(s.code, Errc::rejected);
      EXPECT_NE(s.message.find("label mismatch"), std::string::npos) << s.message;
      EXPECT_EQ(open_stream(*rx, message, payload).kind, FrameError::label_mismatch);
    }
  }
}

TEST(WireSecurity, LabelIsBoundIntoTheEncryption) {
  // Rewrite the label in transit to the receiver's: the label check passes, GCM does not.
  FramingOptions tx, rx;
  tx.label = "prod";
  rx.label = "prxd";
  tx.keyring = rx.keyring = ring_of({kKey1});
  Bytes sealed, payload;
  ASSERT_TRUE(seal_packet(tx, bytes_of(10), sealed).ok());
  ASSERT_EQ(sealed[2], 4);
  ASSERT_EQ(sealed[5], 'o');
  sealed[5] = 'x';
  EXPECT_EQ(open_packet(rx, sealed, payload).kind, FrameError::decrypt_failed);
  sealed[5] = 'o';
  EXPECT_TRUE(open_packet(tx, sealed, payload).ok());
}

TEST(WireSecurity, LabelQuotedSafelyInErrors) {
  FramingOptions rx;
  rx.label = "a";
  const Bytes frame{0x4d, 0x02, 0x03, 'x', 0x00, '\n', 0x01};
  Bytes payload;
  const FrameStatus s = open_packet(rx, frame, payload);
  EXPECT_EQ(s.kind, FrameError::label_mismatch);
  EXPECT_NE(s.message.find("\"x\\x00\\x0a\""), std::string::npos) << s.message;
}

// Removes the label layer of a frame (what something in front of a node with
// skip_inbound_label_check did already). `offset` is where the frame starts.
Bytes strip_label(Bytes frame, size_t offset = 0) {
  EXPECT_EQ(frame.at(offset + 1), 0x02);
  const size_t n = 2 + frame.at(offset + 2);
  frame.erase(frame.begin() + static_cast<std::ptrdiff_t>(offset + 1),
              frame.begin() + static_cast<std::ptrdiff_t>(offset + 1 + n));
  return frame;
}

TEST(WireSecurity, SkipInboundLabelCheck) {
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted);
    FramingOptions tx, rx;
    tx.label = rx.label = "prod";
    rx.skip_inbound_label_check = true;
    if (encrypted) tx.keyring = rx.keyring = ring_of({kKey1});
    Bytes sealed, payload;
    ASSERT_TRUE(seal_packet(tx, bytes_of(10), sealed).ok());
    // A label is present: refused, whichever it is.
    FrameStatus s = open_packet(rx, sealed, payload);
    EXPECT_EQ(s.kind, FrameError::label_mismatch);
    EXPECT_NE(s.message.find("skip_inbound_label_check"), std::string::npos) << s.message;
    // Without the label header, the configured label is assumed (and is the GCM AAD).
    s = open_packet(rx, strip_label(sealed), payload);
    EXPECT_TRUE(s.ok()) << s.message;
    EXPECT_EQ(payload, bytes_of(10));
    // Stream messages too (the length header is rewritten by whoever strips the label).
    Bytes message;
    ASSERT_TRUE(seal_stream_message(tx, bytes_of(10), message).ok());
    EXPECT_EQ(open_stream(rx, message, payload).kind, FrameError::label_mismatch);
    Bytes body = strip_label(Bytes(message.begin() + kStreamHeaderSize, message.end()));
    s = open_stream_message(rx, body, payload);
    EXPECT_TRUE(s.ok()) << s.message;
    // A frame sealed with no label at all: fine in plaintext, but the AAD differs when encrypted.
    FramingOptions unlabelled = tx;
    unlabelled.label.clear();
    ASSERT_TRUE(seal_packet(unlabelled, bytes_of(10), sealed).ok());
    s = open_packet(rx, sealed, payload);
    if (encrypted) {
      EXPECT_EQ(s.kind, FrameError::decrypt_failed);
    } else {
      EXPECT_TRUE(s.ok()) << s.message;
    }
  }
}

// The reference's 4-step switch of a running cluster from plaintext to encryption:
// (A) no keys; (B) keys, verify_incoming=false, verify_outgoing=false; (C) keys,
// verify_incoming=false, verify_outgoing=true; (D) keys, both true. Neighbouring steps
// must understand each other in both directions, so nodes can be reconfigured one by one.
TEST(WireSecurity, PlaintextToEncryptedUpgradeMatrix) {
  struct Step {
    char name;
    bool keys, in, out;
  };
  const std::array<Step, 4> steps{{{'A', false, true, true},
                                   {'B', true, false, false},
                                   {'C', true, false, true},
                                   {'D', true, true, true}}};
  auto ring = ring_of({kKey1});
  auto options = [&](const Step& st) {
    FramingOptions o;
    o.label = "prod";
    o.crc = true;
    o.compress = true;
    if (st.keys) o.keyring = ring;
    o.verify_incoming = st.in;
    o.verify_outgoing = st.out;
    return o;
  };
  for (const Step& from : steps) {
    for (const Step& to : steps) {
      SCOPED_TRACE(std::string(1, from.name) + " -> " + std::string(1, to.name));
      const bool sends_encrypted = from.keys && from.out;
      const bool accepts = sends_encrypted ? to.keys : !(to.keys && to.in);
      Bytes sealed, message, payload;
      ASSERT_TRUE(seal_packet(options(from), text_of(500), sealed).ok());
      ASSERT_TRUE(seal_stream_message(options(from), text_of(500), message).ok());
      const FrameStatus s = open_packet(options(to), sealed, payload);
      EXPECT_EQ(s.ok(), accepts) << s.message;
      EXPECT_EQ(open_stream(options(to), message, payload).ok(), accepts);
      if (!accepts) {
        EXPECT_EQ(s.kind, sends_encrypted ? FrameError::decrypt_failed : FrameError::not_encrypted);
      }
      if (std::abs(from.name - to.name) <= 1) {
        EXPECT_TRUE(accepts);
      }
    }
  }
}

TEST(WireSecurity, KeyRotation) {
  auto tx_ring = ring_of({kKey1});
  auto rx_ring = ring_of({kKey1});
  FramingOptions tx, rx;
  tx.keyring = tx_ring;
  rx.keyring = rx_ring;
  Bytes old_packet, old_message, payload;
  ASSERT_TRUE(seal_packet(tx, bytes_of(30), old_packet).ok());
  ASSERT_TRUE(seal_stream_message(tx, bytes_of(30), old_message).ok());

  // Step 1: install the new key everywhere. Step 2: make it primary (here: sender first).
  ASSERT_TRUE(tx_ring->install(kKey2).ok());
  ASSERT_TRUE(rx_ring->install(kKey2).ok());
  ASSERT_TRUE(tx_ring->use(kKey2).ok());
  Bytes new_packet;
  ASSERT_TRUE(seal_packet(tx, bytes_of(30), new_packet).ok());
  EXPECT_TRUE(open_packet(rx, new_packet, payload).ok());  // rx still has kKey1 as primary
  EXPECT_TRUE(open_packet(rx, old_packet, payload).ok());
  EXPECT_TRUE(open_stream(rx, old_message, payload).ok());
  EXPECT_TRUE(open_packet(tx, old_packet, payload).ok());  // old primary still installed
  // A node that never got the new key cannot read the new traffic.
  FramingOptions stale;
  stale.keyring = ring_of({kKey1});
  EXPECT_EQ(open_packet(stale, new_packet, payload).kind, FrameError::decrypt_failed);

  // Step 3: remove the old key: old traffic no longer opens, new traffic does.
  ASSERT_TRUE(rx_ring->use(kKey2).ok());
  ASSERT_TRUE(rx_ring->remove(kKey1).ok());
  EXPECT_EQ(open_packet(rx, old_packet, payload).kind, FrameError::decrypt_failed);
  EXPECT_EQ(open_stream(rx, old_message, payload).kind, FrameError::decrypt_failed);
  EXPECT_TRUE(open_packet(rx, new_packet, payload).ok());
  EXPECT_EQ(payload, bytes_of(30));
}

// Flips every bit of a frame; none of the results may open.
void expect_every_bit_flip_fails(const FramingOptions& rx, const Bytes& frame, bool stream, size_t from = 0) {
  size_t failures = 0, flips = 0;
  for (size_t i = from; i < frame.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = frame;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      Bytes payload;
      const FrameStatus s = stream ? open_stream_message(rx, bad, payload) : open_packet(rx, bad, payload);
      ++flips;
      if (!s.ok()) {
        ++failures;
        EXPECT_NE(s.kind, FrameError::none);
        EXPECT_FALSE(s.message.empty());
      } else {
        ADD_FAILURE() << "flip of bit " << bit << " of byte " << i << " went unnoticed";
      }
    }
  }
  EXPECT_EQ(failures, flips);
}

TEST(WireSecurity, TamperingAlwaysFails) {
  for (bool compress : {false, true}) {
    for (const char* label : {"", "prod"}) {
      SCOPED_TRACE(std::string("compress=") + std::to_string(compress) + " label=" + label);
      FramingOptions opt;
      opt.label = label;
      opt.crc = true;
      opt.compress = compress;
      opt.keyring = ring_of({kKey1, kKey2});
      Bytes sealed, message;
      ASSERT_TRUE(seal_packet(opt, text_of(120), sealed).ok());
      expect_every_bit_flip_fails(opt, sealed, false);
      ASSERT_TRUE(seal_stream_message(opt, text_of(120), message).ok());
      expect_every_bit_flip_fails(opt, Bytes(message.begin() + kStreamHeaderSize, message.end()), true);
    }
  }
}

TEST(WireSecurity, CrcCatchesCorruption) {
  FramingOptions opt;
  opt.crc = true;
  Bytes sealed, payload;
  ASSERT_TRUE(seal_packet(opt, bytes_of(100), sealed).ok());
  ASSERT_EQ(sealed[1], 0x04);
  // Every bit is covered: by the checksum, or by the layer syntax (magic, CRC tag).
  expect_every_bit_flip_fails(opt, sealed, false);
  Bytes bad = sealed;
  bad[50] ^= 0x10;
  const FrameStatus s = open_packet(opt, bad, payload);
  EXPECT_EQ(s.kind, FrameError::bad_crc);
  EXPECT_EQ(s.code, Errc::protocol);
  // A receiver accepts datagrams with and without CRC, whatever its own setting.
  ASSERT_TRUE(open_packet(FramingOptions{}, sealed, payload).ok());
  ASSERT_TRUE(seal_packet(FramingOptions{}, bytes_of(100), sealed).ok());
  ASSERT_TRUE(open_packet(opt, sealed, payload).ok());
  // Streams carry no CRC.
  Bytes message;
  ASSERT_TRUE(seal_stream_message(opt, bytes_of(100), message).ok());
  EXPECT_EQ(message.size(), kStreamHeaderSize + 2 + 100);
}

TEST(WireSecurity, CompressionOnlyWhenSmaller) {
  FramingOptions opt;
  opt.compress = true;
  Bytes sealed;
  std::mt19937 rng(7);
  Bytes noise(1000);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  ASSERT_TRUE(seal_packet(opt, noise, sealed).ok());  // incompressible: stays plain
  EXPECT_EQ(sealed[1], 0x01);
  ASSERT_TRUE(seal_packet(opt, Bytes(1000, 0), sealed).ok());
  EXPECT_EQ(sealed[1], 0x05);
  EXPECT_LT(sealed.size(), 100u);
}

// A frame `[M][05][size][data]` built by hand.
Bytes compressed_frame(uint32_t declared, const Bytes& data) {
  Bytes f{0x4d, 0x05, static_cast<uint8_t>(declared >> 24), static_cast<uint8_t>(declared >> 16),
          static_cast<uint8_t>(declared >> 8), static_cast<uint8_t>(declared)};
  f.insert(f.end(), data.begin(), data.end());
  return f;
}

Bytes deflated(const Bytes& in) {
  Bytes z;
  EXPECT_TRUE(detail::deflate_bytes(in, z));
  return z;
}

// Garbage that declares megabytes costs what it really inflates to: the output buffer grows
// with zlib's output, it is never sized from the declared length.
TEST(WireSecurity, InflateAllocatesWhatItProducesNotWhatIsDeclared) {
  std::mt19937 rng(7);
  Bytes noise(41000);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  const Bytes z = deflated(noise);  // a valid stream of 41 KB that claims 20 MiB
  Bytes out;
  core::Status st = detail::inflate_bytes(z, 20u << 20, out);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message.find("shorter than the declared size"), std::string::npos) << st.message;
  EXPECT_LT(out.capacity(), size_t{1} << 20);
  // Corrupt data fails at once, as cheaply.
  out = Bytes{};
  Bytes junk = z;
  for (size_t i = 2; i < junk.size(); i += 7) junk[i] ^= 0x5a;
  EXPECT_FALSE(detail::inflate_bytes(junk, 20u << 20, out).ok());
  EXPECT_LT(out.capacity(), size_t{1} << 20);
  // A real stream still inflates to its full declared size, however large.
  Bytes zeros(30u << 20, 0);
  out = Bytes{};
  ASSERT_TRUE(detail::inflate_bytes(deflated(zeros), zeros.size(), out).ok());
  EXPECT_EQ(out, zeros);
}

TEST(WireSecurity, DecompressionBounds) {
  const FramingOptions opt;
  Bytes payload;
  // A real bomb: 41 MiB of one byte inflates past the 40 MiB default.
  Bytes big(41u << 20, 0x01);
  big[0] = 0x01;  // the plain tag
  const Bytes bomb = deflated(big);
  EXPECT_LT(bomb.size(), 100000u);
  FrameStatus s = open_stream_message(opt, compressed_frame(static_cast<uint32_t>(big.size()), bomb), payload);
  EXPECT_EQ(s.kind, FrameError::too_large);
  EXPECT_EQ(s.code, Errc::too_large);
  EXPECT_NE(s.message.find(std::to_string(40u << 20)), std::string::npos) << s.message;
  // The knob: a smaller limit refuses a smaller bomb.
  FramingOptions small = opt;
  small.max_decompressed = 50000;
  Bytes zeros(100000, 0);
  zeros[0] = 0x01;
  s = open_stream_message(small, compressed_frame(100000, deflated(zeros)), payload);
  EXPECT_EQ(s.kind, FrameError::too_large);
  ASSERT_TRUE(open_stream_message(opt, compressed_frame(100000, deflated(zeros)), payload).ok());
  EXPECT_EQ(payload.size(), 99999u);
  // A datagram inflates to at most 64 KiB, whatever the stream limit: nobody sends more.
  s = open_packet(opt, compressed_frame(100000, deflated(zeros)), payload);
  EXPECT_EQ(s.kind, FrameError::too_large);
  EXPECT_NE(s.message.find("65536"), std::string::npos) << s.message;
  Bytes most(kMaxInflatedPacket, 0);
  most[0] = 0x01;
  ASSERT_TRUE(open_packet(opt, compressed_frame(kMaxInflatedPacket, deflated(most)), payload).ok());
  EXPECT_EQ(payload.size(), kMaxInflatedPacket - 1);
  // A declared size that deflate cannot reach from so few bytes: refused before allocating.
  s = open_stream_message(opt, compressed_frame(30u << 20, deflated(Bytes{0x01, 'a'})), payload);
  EXPECT_EQ(s.kind, FrameError::decompress_failed);
  EXPECT_NE(s.message.find("impossible"), std::string::npos) << s.message;
  // Declared sizes that do not match the data.
  const Bytes text = [] {
    Bytes t = text_of(2000);
    t[0] = 0x01;
    return t;
  }();
  EXPECT_TRUE(open_packet(opt, compressed_frame(2000, deflated(text)), payload).ok());
  EXPECT_EQ(open_packet(opt, compressed_frame(1999, deflated(text)), payload).kind, FrameError::decompress_failed);
  EXPECT_EQ(open_packet(opt, compressed_frame(2001, deflated(text)), payload).kind, FrameError::decompress_failed);
  // Empty result, garbage, truncated stream, trailing bytes.
  s = open_packet(opt, compressed_frame(0, deflated(Bytes{})), payload);
  EXPECT_EQ(s.kind, FrameError::decompress_failed);
  EXPECT_NE(s.message.find("empty"), std::string::npos) << s.message;
  EXPECT_EQ(open_packet(opt, compressed_frame(100, bytes_of(50)), payload).kind, FrameError::decompress_failed);
  Bytes z = deflated(text);
  z.pop_back();
  EXPECT_EQ(open_packet(opt, compressed_frame(2000, z), payload).kind, FrameError::decompress_failed);
  z = deflated(text);
  z.push_back(0);
  EXPECT_EQ(open_packet(opt, compressed_frame(2000, z), payload).kind, FrameError::decompress_failed);
  // Compression inside compression is not a layer order we accept.
  Bytes inner = compressed_frame(2000, deflated(text));
  inner.erase(inner.begin());  // drop the magic: [05][size][zlib]
  EXPECT_EQ(open_packet(opt, compressed_frame(static_cast<uint32_t>(inner.size()), deflated(inner)), payload).kind,
            FrameError::malformed);
}

TEST(WireSecurity, StreamSizeBounds) {
  const FramingOptions opt;  // 20 MiB
  const size_t limit = 20u << 20;
  size_t len = 0;
  const uint32_t over = static_cast<uint32_t>(limit + 1);
  const std::array<uint8_t, 4> header{static_cast<uint8_t>(over >> 24), static_cast<uint8_t>(over >> 16),
                                      static_cast<uint8_t>(over >> 8), static_cast<uint8_t>(over)};
  FrameStatus s = parse_stream_header(opt, header, len);
  EXPECT_EQ(s.kind, FrameError::too_large);
  EXPECT_EQ(s.code, Errc::too_large);
  Bytes body(limit + 1, 0), payload;
  body[0] = 0x4d;
  body[1] = 0x01;
  EXPECT_EQ(open_stream_message(opt, body, payload).kind, FrameError::too_large);
  body.pop_back();
  EXPECT_TRUE(open_stream_message(opt, body, payload).ok());
  // The sender refuses to write what the peer would refuse to read.
  Bytes message;
  s = seal_stream_message(opt, Bytes(limit - 1, 0), message);
  EXPECT_EQ(s.kind, FrameError::too_large);
  EXPECT_TRUE(message.empty());
  EXPECT_TRUE(seal_stream_message(opt, Bytes(limit - 2, 0), message).ok());
  EXPECT_TRUE(seal_stream_message(opt, Bytes(limit - 1, 0)).empty());  // the older form
  // With compression the same payload is small on the wire.
  FramingOptions compress = opt;
  compress.compress = true;
  EXPECT_TRUE(seal_stream_message(compress, Bytes(limit - 1, 0), message).ok());
  EXPECT_LT(message.size(), 100000u);
}

TEST(WireSecurity, LabelLength) {
  FramingOptions opt;
  opt.label = std::string(255, 'l');
  EXPECT_TRUE(validate(opt).ok());
  expect_round_trip(opt, opt, bytes_of(20));
  opt.label = std::string(256, 'l');
  const Status v = validate(opt);
  EXPECT_EQ(v.code, Errc::invalid);
  EXPECT_NE(v.message.find("256"), std::string::npos) << v.message;
  Bytes sealed{1, 2, 3};
  const FrameStatus s = seal_packet(opt, bytes_of(20), sealed);
  EXPECT_EQ(s.kind, FrameError::bad_options);
  EXPECT_EQ(s.code, Errc::invalid);
  EXPECT_TRUE(sealed.empty());
  EXPECT_TRUE(seal_packet(opt, bytes_of(20)).empty());
  Bytes message;
  EXPECT_EQ(seal_stream_message(opt, bytes_of(20), message).kind, FrameError::bad_options);
}

TEST(WireSecurity, MalformedLayers) {
  FramingOptions opt;
  opt.label = "ab";
  auto kind = [&](const FramingOptions& o, Bytes frame) {
    Bytes payload;
    const FrameStatus s = open_packet(o, frame, payload);
    EXPECT_EQ(s.ok(), s.kind == FrameError::none);
    EXPECT_EQ(s.ok(), s.message.empty()) << s.message;
    return s.kind;
  };
  EXPECT_EQ(kind(opt, {0x4d, 0x02, 0x02, 'a', 'b', 0x01, 9}), FrameError::none);
  EXPECT_EQ(kind(opt, {0x4d, 0x02}), FrameError::malformed);                   // no length
  EXPECT_EQ(kind(opt, {0x4d, 0x02, 0x00, 0x01}), FrameError::malformed);       // empty label
  EXPECT_EQ(kind(opt, {0x4d, 0x02, 0x05, 'a', 'b'}), FrameError::malformed);   // truncated label
  EXPECT_EQ(kind(opt, {0x4d, 0x02, 0x02, 'a', 'b'}), FrameError::malformed);   // nothing after it
  EXPECT_EQ(kind(opt, {0x4d, 0x02, 0x02, 'a', 'b', 0x02, 0x02, 'a', 'b', 0x01}),
            FrameError::malformed);  // two labels
  const FramingOptions plain;
  EXPECT_EQ(kind(plain, {0x4d, 0x04, 0, 0}), FrameError::malformed);            // truncated CRC
  EXPECT_EQ(kind(plain, {0x4d, 0x05, 0, 0, 1}), FrameError::malformed);         // truncated size
  EXPECT_EQ(kind(plain, {0x4d, 0x03, 1, 2, 3}), FrameError::malformed);         // encrypted, too short
  EXPECT_EQ(kind(plain, {0x4d, 0x06, 1}), FrameError::malformed);               // unknown layer
  EXPECT_EQ(kind(plain, {0x4d, 0x01}), FrameError::none);                       // empty payload
  // Layers in the wrong order: label inside CRC, CRC inside compression.
  const Bytes label_layer{0x02, 0x01, 'a', 0x01};
  boost::crc_32_type crc;
  crc.process_bytes(label_layer.data(), label_layer.size());
  const uint32_t c = crc.checksum();
  Bytes crc_then_label{0x4d, 0x04, static_cast<uint8_t>(c >> 24), static_cast<uint8_t>(c >> 16),
                       static_cast<uint8_t>(c >> 8), static_cast<uint8_t>(c)};
  crc_then_label.insert(crc_then_label.end(), label_layer.begin(), label_layer.end());
  EXPECT_EQ(kind(plain, crc_then_label), FrameError::malformed);
  Bytes crc_inside{0x04, 0, 0, 0, 0, 0x01, 7};
  EXPECT_EQ(kind(plain, compressed_frame(static_cast<uint32_t>(crc_inside.size()), deflated(crc_inside))),
            FrameError::malformed);
  // An encrypted frame whose plaintext holds a label layer (sealed by hand with the key).
  FramingOptions keyed;
  keyed.keyring = ring_of({kKey1});
  Bytes frame{0x4d, 0x03};
  const Bytes aad{'P'};
  ASSERT_TRUE(detail::aes_gcm_seal(kKey1, aad, Bytes{0x02, 0x01, 'a', 0x01, 5}, frame).ok());
  Bytes payload;
  const FrameStatus s = open_packet(keyed, frame, payload);
  EXPECT_EQ(s.kind, FrameError::malformed);
  EXPECT_NE(s.message.find("misplaced"), std::string::npos) << s.message;
  // The same by hand with a proper inner chain opens: the AAD is as documented.
  frame = {0x4d, 0x03};
  ASSERT_TRUE(detail::aes_gcm_seal(kKey1, aad, Bytes{0x01, 5}, frame).ok());
  ASSERT_TRUE(open_packet(keyed, frame, payload).ok());
  EXPECT_EQ(payload, Bytes{5});
}

TEST(WireSecurity, ErrorKindsMapToCodes) {
  EXPECT_STREQ(to_string(FrameError::label_mismatch), "label_mismatch");
  EXPECT_STREQ(to_string(FrameError::decrypt_failed), "decrypt_failed");
  EXPECT_STREQ(to_string(FrameError::bad_crc), "bad_crc");
  EXPECT_STREQ(to_string(FrameError::decompress_failed), "decompress_failed");
  EXPECT_STREQ(to_string(FrameError::too_large), "too_large");
  EXPECT_STREQ(to_string(FrameError::malformed), "malformed");
  EXPECT_STREQ(to_string(FrameError::not_encrypted), "not_encrypted");
}

// AES-GCM against the published test vector (GCM spec, test case 4: AES-128, 96-bit IV,
// with associated data), so the cipher is the standard one and not just self-consistent.
TEST(WireSecurity, AesGcmKnownAnswer) {
  auto hex = [](std::string_view s) {
    Bytes b;
    for (size_t i = 0; i + 1 < s.size(); i += 2) b.push_back(static_cast<uint8_t>(std::stoi(std::string(s.substr(i, 2)), nullptr, 16)));
    return b;
  };
  const Bytes key = hex("feffe9928665731c6d6a8f9467308308");
  const Bytes iv = hex("cafebabefacedbaddecaf888");
  const Bytes pt = hex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  const Bytes aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const Bytes ct = hex(
      "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
      "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091");
  const Bytes tag = hex("5bc94fbc3221a5db94fae95ae7121a47");
  Bytes sealed = iv;
  sealed.insert(sealed.end(), ct.begin(), ct.end());
  sealed.insert(sealed.end(), tag.begin(), tag.end());
  Bytes out;
  const std::vector<Bytes> keys{bytes_of(16, 9), key};  // the second key is the right one
  ASSERT_TRUE(detail::aes_gcm_open(keys, aad, sealed, out));
  EXPECT_EQ(out, pt);
  sealed.back() ^= 1;
  EXPECT_FALSE(detail::aes_gcm_open(keys, aad, sealed, out));
}

}  // namespace
}  // namespace memberlist::wire::test
