// Framing of datagrams and stream messages, independent of the codec.
//
// A frame is `[kMagic][layer...]`: after the magic byte comes a chain of layers, each
// starting with a tag byte that says what follows. seal() wraps the payload from the inside
// out, in the reference's order (compress, then CRC, then encrypt, label outermost); open()
// peels the layers in that fixed order, each at most once, until it reaches `plain`:
//
//   [M] [label: 02 len label]? [encrypted: 03 nonce(12) ciphertext tag(16)]?
//       ( inside the encryption, or directly: )
//       [crc32: 04 crc(4, BE, over the rest)]? [compressed: 05 size(4, BE) zlib]? [plain: 01 payload]
//
// The magic byte lets a node tell our traffic from a hashicorp/memberlist peer's (whose
// first byte is a message type 0..13 or the label 244). GCM's associated data is a domain
// byte ('P' datagram, 'S' stream message) and the label, so a frame is not accepted under
// another label nor as the other kind of frame. The stream length header is not bound:
// the ciphertext runs to the end of the body, so a changed length breaks the GCM tag anyway.
#include <string>

#include <boost/crc.hpp>

#include <algorithm>

#include "wire/compression.h"
#include "wire/crypto.h"
#include "wire/wire.h"

namespace memberlist::wire {
namespace {

constexpr uint8_t kMagic = 0x4d;  // 'M'

enum class Tag : uint8_t {
  plain = 0x01,       // the rest is the codec's message
  label = 0x02,       // len u8 (1..255), label bytes
  encrypted = 0x03,   // nonce, AES-GCM ciphertext of the inner layers, tag
  crc32 = 0x04,       // CRC32 (IEEE, big-endian) of the inner layers
  compressed = 0x05,  // inflated size u32 BE, zlib stream of the inner layers
};

enum class Kind { packet, stream };

FrameStatus fail(FrameError kind, std::string what) {
  core::Errc code = core::Errc::protocol;
  switch (kind) {
    case FrameError::label_mismatch:
    case FrameError::not_encrypted:
    case FrameError::decrypt_failed: code = core::Errc::rejected; break;
    case FrameError::too_large: code = core::Errc::too_large; break;
    case FrameError::bad_options: code = core::Errc::invalid; break;
    case FrameError::crypto_error: code = core::Errc::io; break;
    default: break;
  }
  FrameStatus s;
  s.code = code;
  s.message = std::move(what);
  s.kind = kind;
  return s;
}

FrameStatus from_status(const Status& s, FrameError kind) {
  return s.ok() ? FrameStatus{} : fail(kind, s.message);
}

const char* noun(Kind k) { return k == Kind::packet ? "datagram" : "stream message"; }

void put_u32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}
uint32_t get_u32(std::span<const uint8_t> in) {
  return (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) | (uint32_t{in[2]} << 8) | uint32_t{in[3]};
}

uint32_t crc32_of(std::span<const uint8_t> data) {
  boost::crc_32_type crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

Bytes associated_data(Kind kind, std::string_view label) {
  Bytes aad;
  aad.reserve(1 + label.size());
  aad.push_back(kind == Kind::packet ? 'P' : 'S');
  aad.insert(aad.end(), label.begin(), label.end());
  return aad;
}

// A label from the network, quoted for a log line: printable ASCII kept, the rest escaped.
std::string quoted(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out + "\"";
}

constexpr size_t kMinCompress = 64;

// The most a compressed layer may inflate to: a datagram never held more than one datagram's
// worth before it was compressed, whatever the stream limit.
size_t inflate_limit(const FramingOptions& opt, Kind kind) {
  return kind == Kind::packet ? std::min(opt.max_decompressed, kMaxInflatedPacket) : opt.max_decompressed;
}

// Everything inside the encryption: [crc32]? [compressed]? plain payload.
void seal_inner(const FramingOptions& opt, Kind kind, std::span<const uint8_t> payload, Bytes& inner) {
  inner.reserve(1 + payload.size());
  inner.push_back(static_cast<uint8_t>(Tag::plain));
  inner.insert(inner.end(), payload.begin(), payload.end());
  // Below kMinCompress bytes zlib's own 6 bytes plus our 5 leave almost nothing to gain, and
  // trying costs more CPU than the rest of a probe (pings and acks are ~40 bytes).
  if (opt.compress && inner.size() >= kMinCompress && inner.size() <= inflate_limit(opt, kind) &&
      inner.size() <= UINT32_MAX) {
    Bytes z;
    if (detail::deflate_bytes(inner, z) && 5 + z.size() < inner.size()) {
      Bytes layer;
      layer.reserve(5 + z.size());
      layer.push_back(static_cast<uint8_t>(Tag::compressed));
      put_u32(layer, static_cast<uint32_t>(inner.size()));
      layer.insert(layer.end(), z.begin(), z.end());
      inner = std::move(layer);
    }
  }
  if (opt.crc && kind == Kind::packet) {
    Bytes layer;
    layer.reserve(kCrcOverhead + inner.size());
    layer.push_back(static_cast<uint8_t>(Tag::crc32));
    put_u32(layer, crc32_of(inner));
    layer.insert(layer.end(), inner.begin(), inner.end());
    inner = std::move(layer);
  }
}

// Appends the frame of `payload` ([M] [label]? [encrypted | inner]) to `out`.
FrameStatus seal_frame(const FramingOptions& opt, Kind kind, std::span<const uint8_t> payload, Bytes& out) {
  if (auto s = validate(opt); !s.ok()) return from_status(s, FrameError::bad_options);
  Bytes inner;
  seal_inner(opt, kind, payload, inner);
  out.push_back(kMagic);
  if (!opt.label.empty()) {
    out.push_back(static_cast<uint8_t>(Tag::label));
    out.push_back(static_cast<uint8_t>(opt.label.size()));
    out.insert(out.end(), opt.label.begin(), opt.label.end());
  }
  Keyring::Snapshot keys = opt.keyring && opt.verify_outgoing ? opt.keyring->snapshot() : nullptr;
  if (!keys || keys->empty()) {
    out.insert(out.end(), inner.begin(), inner.end());
    return {};
  }
  out.push_back(static_cast<uint8_t>(Tag::encrypted));
  const Status s = detail::aes_gcm_seal(keys->front(), associated_data(kind, opt.label), inner, out);
  if (s.ok()) return {};
  return fail(s.code == core::Errc::io          ? FrameError::crypto_error
              : s.code == core::Errc::too_large ? FrameError::too_large
                                                : FrameError::bad_options,
              s.message);
}

bool has_keys(const FramingOptions& opt) { return opt.keyring && !opt.keyring->empty(); }

bool at(std::span<const uint8_t> rest, Tag t) { return !rest.empty() && rest[0] == static_cast<uint8_t>(t); }

// Peels the layers of one frame, checking every rule of `opt`.
FrameStatus open_frame(const FramingOptions& opt, Kind kind, std::span<const uint8_t> frame, Bytes& payload) {
  const std::string what = noun(kind);
  if (frame.empty()) return fail(FrameError::malformed, "empty " + what);
  if (frame[0] != kMagic) {
    return fail(FrameError::malformed, what + " does not start with the libmemberlist magic byte (got " +
                                           std::to_string(frame[0]) + ")");
  }
  std::span<const uint8_t> rest = frame.subspan(1);

  // Label.
  bool has_label = false;
  std::string_view label;
  if (at(rest, Tag::label)) {
    if (rest.size() < 2 || rest[1] == 0 || rest.size() < 2u + rest[1]) {
      return fail(FrameError::malformed, what + ": truncated or empty label header");
    }
    has_label = true;
    label = std::string_view(reinterpret_cast<const char*>(rest.data() + 2), rest[1]);
    rest = rest.subspan(2u + rest[1]);
  }
  if (opt.skip_inbound_label_check) {
    if (has_label) {
      return fail(FrameError::label_mismatch,
                  what + " carries a label " + quoted(label) + " but skip_inbound_label_check is set");
    }
  } else if (label != opt.label) {
    return fail(FrameError::label_mismatch,
                what + ": label mismatch: got " + quoted(label) + ", expected " + quoted(opt.label));
  }

  // Encryption.
  Bytes decrypted;
  if (at(rest, Tag::encrypted)) {
    const auto sealed = rest.subspan(1);
    if (sealed.size() < detail::kGcmNonceSize + detail::kGcmTagSize) {
      return fail(FrameError::malformed, what + ": encrypted layer too short");
    }
    Keyring::Snapshot keys = opt.keyring ? opt.keyring->snapshot() : nullptr;
    if (!keys || keys->empty()) return fail(FrameError::decrypt_failed, what + " is encrypted but no key is installed");
    if (!detail::aes_gcm_open(*keys, associated_data(kind, opt.label), sealed, decrypted)) {
      return fail(FrameError::decrypt_failed, what + ": no installed key could decrypt it");
    }
    rest = decrypted;
  } else if (opt.verify_incoming && has_keys(opt)) {
    return fail(FrameError::not_encrypted, what + " is not encrypted but keys are installed (verify_incoming)");
  }

  // CRC32 over the rest.
  if (at(rest, Tag::crc32)) {
    if (rest.size() < kCrcOverhead) return fail(FrameError::malformed, what + ": truncated CRC layer");
    const uint32_t expected = get_u32(rest.subspan(1));
    rest = rest.subspan(kCrcOverhead);
    if (crc32_of(rest) != expected) return fail(FrameError::bad_crc, what + ": CRC32 mismatch");
  }

  // Compression. The declared size is bounded before anything is allocated for it.
  Bytes inflated;
  if (at(rest, Tag::compressed)) {
    if (rest.size() < 5) return fail(FrameError::malformed, what + ": truncated compressed layer");
    const size_t size = get_u32(rest.subspan(1));
    const size_t limit = inflate_limit(opt, kind);
    if (size > limit) {
      return fail(FrameError::too_large, what + ": decompressed size " + std::to_string(size) +
                                             " exceeds the limit of " + std::to_string(limit));
    }
    const Status s = detail::inflate_bytes(rest.subspan(5), size, inflated);
    if (!s.ok()) return fail(FrameError::decompress_failed, what + ": " + s.message);
    rest = inflated;
  }

  if (rest.empty()) return fail(FrameError::malformed, what + " truncated: missing layer tag");
  if (!at(rest, Tag::plain)) {
    const uint8_t tag = rest[0];
    const bool known = tag >= static_cast<uint8_t>(Tag::label) && tag <= static_cast<uint8_t>(Tag::compressed);
    return fail(FrameError::malformed, what + (known ? ": misplaced framing layer " : ": unsupported framing layer ") +
                                           std::to_string(tag));
  }
  payload.assign(rest.begin() + 1, rest.end());
  return {};
}

FrameStatus too_large(size_t len, size_t limit) {
  return fail(FrameError::too_large, "stream message of " + std::to_string(len) + " bytes exceeds the limit of " +
                                         std::to_string(limit));
}

}  // namespace

const char* to_string(FrameError e) {
  switch (e) {
    case FrameError::none: return "none";
    case FrameError::malformed: return "malformed";
    case FrameError::label_mismatch: return "label_mismatch";
    case FrameError::not_encrypted: return "not_encrypted";
    case FrameError::decrypt_failed: return "decrypt_failed";
    case FrameError::bad_crc: return "bad_crc";
    case FrameError::decompress_failed: return "decompress_failed";
    case FrameError::too_large: return "too_large";
    case FrameError::bad_options: return "bad_options";
    case FrameError::crypto_error: return "crypto_error";
  }
  return "unknown";
}

Status validate(const FramingOptions& opt) {
  if (opt.label.size() > kMaxLabelSize) {
    return Status::error(core::Errc::invalid, "label of " + std::to_string(opt.label.size()) +
                                                  " bytes is longer than " + std::to_string(kMaxLabelSize));
  }
  return {};
}

bool encrypts(const FramingOptions& opt) { return opt.verify_outgoing && has_keys(opt); }

size_t packet_overhead(const FramingOptions& opt, bool assume_encryption) {
  size_t n = kFrameHeaderOverhead + label_overhead(opt.label);
  if (opt.crc) n += kCrcOverhead;
  if (assume_encryption || encrypts(opt)) n += kEncryptionOverhead;
  return n;
}

FrameStatus seal_packet(const FramingOptions& opt, std::span<const uint8_t> payload, Bytes& datagram) {
  datagram.clear();
  FrameStatus s = seal_frame(opt, Kind::packet, payload, datagram);
  if (!s.ok()) datagram.clear();
  return s;
}

Bytes seal_packet(const FramingOptions& opt, std::span<const uint8_t> payload) {
  Bytes out;
  seal_packet(opt, payload, out);
  return out;
}

FrameStatus open_packet(const FramingOptions& opt, std::span<const uint8_t> datagram, Bytes& payload) {
  return open_frame(opt, Kind::packet, datagram, payload);
}

FrameStatus seal_stream_message(const FramingOptions& opt, std::span<const uint8_t> payload, Bytes& message) {
  message.assign(kStreamHeaderSize, 0);
  FrameStatus s = seal_frame(opt, Kind::stream, payload, message);
  const size_t len = message.size() - kStreamHeaderSize;
  if (s.ok() && (len > opt.max_stream_message || len > UINT32_MAX)) s = too_large(len, opt.max_stream_message);
  if (!s.ok()) {
    message.clear();
    return s;
  }
  for (size_t i = 0; i < kStreamHeaderSize; ++i) {
    message[i] = static_cast<uint8_t>(len >> (8 * (kStreamHeaderSize - 1 - i)));
  }
  return s;
}

Bytes seal_stream_message(const FramingOptions& opt, std::span<const uint8_t> payload) {
  Bytes out;
  seal_stream_message(opt, payload, out);
  return out;
}

FrameStatus parse_stream_header(const FramingOptions& opt, std::span<const uint8_t, kStreamHeaderSize> header,
                                size_t& body_length) {
  const size_t len = get_u32(header);
  if (len > opt.max_stream_message) return too_large(len, opt.max_stream_message);
  if (len < kFrameHeaderOverhead) {
    return fail(FrameError::malformed, "stream message of " + std::to_string(len) + " bytes is too short");
  }
  body_length = len;
  return {};
}

FrameStatus open_stream_message(const FramingOptions& opt, std::span<const uint8_t> body, Bytes& payload) {
  if (body.size() > opt.max_stream_message) return too_large(body.size(), opt.max_stream_message);
  return open_frame(opt, Kind::stream, body, payload);
}

}  // namespace memberlist::wire
