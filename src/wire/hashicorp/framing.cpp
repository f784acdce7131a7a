#include "wire/hashicorp/framing.h"

#include <algorithm>
#include <climits>
#include <string>

#include <msgpack.hpp>
#include <zlib.h>

#include "wire/crypto.h"
#include "wire/hashicorp/codec.h"
#include "wire/hashicorp/lzw.h"

namespace memberlist::wire::hashicorp {
namespace {

using core::Bytes;
using core::Errc;
using core::Status;

constexpr uint8_t kHasCrcMsg = static_cast<uint8_t>(MsgType::has_crc);
constexpr size_t kBlockSize = 16;  // AES
constexpr size_t kVersionSize = 1;

uint32_t crc32_ieee(std::span<const uint8_t> b) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed it in pieces.
  while (!b.empty()) {
    const size_t n = std::min<size_t>(b.size(), 1u << 30);
    crc = crc32(crc, b.data(), static_cast<uInt>(n));
    b = b.subspan(n);
  }
  return static_cast<uint32_t>(crc);
}

void put_u32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}
uint32_t get_u32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

struct Sink {
  Bytes& out;
  void write(const char* p, size_t n) { out.insert(out.end(), p, p + n); }
};

}  // namespace

Bytes add_crc(std::span<const uint8_t> msg) {
  Bytes out;
  out.reserve(kCrcOverhead + msg.size());
  out.push_back(kHasCrcMsg);
  put_u32(out, crc32_ieee(msg));
  out.insert(out.end(), msg.begin(), msg.end());
  return out;
}

Status check_crc(std::span<const uint8_t> packet, std::span<const uint8_t>& msg) {
  msg = packet;
  if (packet.size() < kCrcOverhead || packet[0] != kHasCrcMsg) return Status::success();
  const auto body = packet.subspan(kCrcOverhead);
  if (crc32_ieee(body) != get_u32(packet.data() + 1))
    return Status::error(Errc::protocol, "hashicorp: invalid checksum for UDP packet");
  msg = body;
  return Status::success();
}

Bytes compress_payload(std::span<const uint8_t> msg) {
  const Bytes z = lzw_compress(msg);
  Bytes out;
  out.reserve(z.size() + 20);
  out.push_back(static_cast<uint8_t>(MsgType::compress));
  // msgpack compress{Algo, Buf} as go-msgpack 0.5.x writes it (see codec.h).
  Sink sink{out};
  msgpack::packer<Sink> pk(sink);
  pk.pack_map(2);
  pk.pack_v4raw(4), pk.pack_v4raw_body("Algo", 4);
  pk.pack_uint8(0);
  pk.pack_v4raw(3), pk.pack_v4raw_body("Buf", 3);
  pk.pack_v4raw(static_cast<uint32_t>(z.size()));
  pk.pack_v4raw_body(reinterpret_cast<const char*>(z.data()), static_cast<uint32_t>(z.size()));
  return out;
}

Bytes compress_if_smaller(std::span<const uint8_t> msg) {
  Bytes c = compress_payload(msg);
  if (c.size() < msg.size()) return c;
  return Bytes(msg.begin(), msg.end());
}

Status add_label_header(std::string_view label, std::span<const uint8_t> msg, Bytes& out) {
  if (label.size() > kMaxLabelSize)
    return Status::error(Errc::invalid, "hashicorp: label is longer than " + std::to_string(kMaxLabelSize) + " bytes");
  out.clear();
  out.reserve(label_overhead(label) + msg.size());
  if (!label.empty()) {
    out.push_back(kHasLabelMsg);
    out.push_back(static_cast<uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
  }
  out.insert(out.end(), msg.begin(), msg.end());
  return Status::success();
}

Status remove_label_header(std::span<const uint8_t> in, std::string& label, std::span<const uint8_t>& rest) {
  label.clear();
  rest = in;
  if (in.empty() || in[0] != kHasLabelMsg) return Status::success();
  if (in.size() < 2) return Status::error(Errc::protocol, "hashicorp: label header cut short");
  const size_t n = in[1];
  if (n == 0) return Status::error(Errc::protocol, "hashicorp: label header with an empty label");
  if (in.size() < 2 + n) return Status::error(Errc::protocol, "hashicorp: label header cut short");
  label.assign(reinterpret_cast<const char*>(in.data()) + 2, n);
  rest = in.subspan(2 + n);
  return Status::success();
}

size_t encrypted_length(uint8_t version, size_t n) {
  const size_t base = kVersionSize + detail::kGcmNonceSize + n + detail::kGcmTagSize;
  return version >= 1 ? base : base + (kBlockSize - n % kBlockSize);
}

size_t encrypt_overhead(uint8_t version) { return version >= 1 ? 29 : 45; }

Status encrypt_payload(uint8_t version, std::span<const uint8_t> key, std::span<const uint8_t> msg,
                       std::span<const uint8_t> aad, Bytes& out) {
  if (version > 1) return Status::error(Errc::invalid, "hashicorp: unsupported encryption version " + std::to_string(version));
  const size_t start = out.size();
  out.reserve(start + encrypted_length(version, msg.size()));
  out.push_back(version);
  Status s;
  if (version == 1) {
    s = detail::aes_gcm_seal(key, aad, msg, out);
  } else {
    // PKCS#7: 1..16 bytes, each the pad length.
    Bytes padded(msg.begin(), msg.end());
    const size_t pad = kBlockSize - msg.size() % kBlockSize;
    padded.insert(padded.end(), pad, static_cast<uint8_t>(pad));
    s = detail::aes_gcm_seal(key, aad, padded, out);
  }
  if (!s.ok()) out.resize(start);  // nothing half-written is left behind
  return s;
}

Status decrypt_payload(std::span<const Bytes> keys, std::span<const uint8_t> payload, std::span<const uint8_t> aad,
                       Bytes& plaintext) {
  if (payload.empty()) return Status::error(Errc::protocol, "hashicorp: cannot decrypt empty payload");
  const uint8_t version = payload[0];
  if (version > 1) return Status::error(Errc::protocol, "hashicorp: unsupported encryption version " + std::to_string(version));
  if (payload.size() < encrypted_length(version, 0))
    return Status::error(Errc::protocol, "hashicorp: payload is too small to decrypt: " + std::to_string(payload.size()));
  if (!detail::aes_gcm_open(keys, aad, payload.subspan(kVersionSize), plaintext))
    return Status::error(Errc::rejected, "hashicorp: no installed keys could decrypt the message");
  if (version == 0) {
    const size_t pad = plaintext.empty() ? 0 : plaintext.back();
    if (pad == 0 || pad > kBlockSize || pad > plaintext.size())
      return Status::error(Errc::protocol, "hashicorp: bad PKCS#7 padding");
    plaintext.resize(plaintext.size() - pad);
  }
  return Status::success();
}

Status encrypt_stream(uint8_t version, std::span<const uint8_t> key, std::span<const uint8_t> msg,
                      std::string_view label, Bytes& out) {
  if (version > 1) return Status::error(Errc::invalid, "hashicorp: unsupported encryption version " + std::to_string(version));
  const size_t len = encrypted_length(version, msg.size());
  if (len > UINT32_MAX) return Status::error(Errc::too_large, "hashicorp: stream message too large to encrypt");
  out.clear();
  out.push_back(kEncryptMsg);
  put_u32(out, static_cast<uint32_t>(len));
  Bytes aad(out);
  aad.insert(aad.end(), label.begin(), label.end());
  return encrypt_payload(version, key, msg, aad, out);
}

Status parse_stream_length(std::span<const uint8_t, kStreamEncryptHeader> header, size_t max, size_t& length) {
  if (header[0] != kEncryptMsg) return Status::error(Errc::protocol, "hashicorp: stream message is not encrypted");
  length = get_u32(header.data() + 1);
  if (length > max)
    return Status::error(Errc::too_large, "hashicorp: remote node state is larger than limit (" + std::to_string(length) + ")");
  return Status::success();
}

Status decrypt_stream(std::span<const Bytes> keys, std::span<const uint8_t> message, std::string_view label,
                      Bytes& plaintext, size_t max) {
  if (message.size() < kStreamEncryptHeader) return Status::error(Errc::protocol, "hashicorp: encrypted stream cut short");
  size_t len = 0;
  if (Status s = parse_stream_length(message.first<kStreamEncryptHeader>(), max, len); !s.ok()) return s;
  if (message.size() - kStreamEncryptHeader != len)
    return Status::error(Errc::protocol, "hashicorp: encrypted stream is " + std::to_string(message.size() - kStreamEncryptHeader) +
                                             " bytes, its header says " + std::to_string(len));
  Bytes aad(message.begin(), message.begin() + kStreamEncryptHeader);
  aad.insert(aad.end(), label.begin(), label.end());
  return decrypt_payload(keys, message.subspan(kStreamEncryptHeader), aad, plaintext);
}

}  // namespace memberlist::wire::hashicorp
