// Framing of datagrams and stream messages, independent of the codec.
//
// A frame is `[kMagic][layer...]`: after the magic byte comes a chain of layers, each
// starting with a tag byte that says what follows. Today there is one layer, `plain`
// (the codec's bytes follow). Later steps (label, CRC32, compression, AES-GCM) become
// further tags: seal() wraps the payload in them from the inside out, open() peels them
// in a loop until it reaches `plain`. The magic byte lets a node tell our traffic from a
// hashicorp/memberlist peer's (whose first byte is a message type 0..13 or the label 244).
#include <string>

#include "wire/wire.h"

namespace memberlist::wire {
namespace {

constexpr uint8_t kMagic = 0x4d;  // 'M'

enum class Tag : uint8_t {
  plain = 0x01,  // the rest is the codec's message
  // Reserved for the next framing steps: label, crc32, compressed, encrypted.
};

constexpr size_t kFrameHeader = 2;  // magic + plain tag

Status protocol(std::string what) { return Status::error(core::Errc::protocol, std::move(what)); }

// Appends the frame of `payload` to `out`.
void seal_frame(std::span<const uint8_t> payload, Bytes& out) {
  out.reserve(out.size() + kFrameHeader + payload.size());
  out.push_back(kMagic);
  out.push_back(static_cast<uint8_t>(Tag::plain));
  out.insert(out.end(), payload.begin(), payload.end());
}

Status open_frame(std::span<const uint8_t> frame, const char* what, Bytes& payload) {
  if (frame.empty()) return protocol(std::string("empty ") + what);
  if (frame[0] != kMagic) {
    return protocol(std::string(what) + " does not start with the libmemberlist magic byte (got " +
                    std::to_string(frame[0]) + ")");
  }
  std::span<const uint8_t> rest = frame.subspan(1);
  // Each layer consumes at least its tag byte, so this loop ends.
  while (true) {
    if (rest.empty()) return protocol(std::string(what) + " truncated: missing layer tag");
    const uint8_t tag = rest[0];
    rest = rest.subspan(1);
    switch (static_cast<Tag>(tag)) {
      case Tag::plain:
        payload.assign(rest.begin(), rest.end());
        return {};
    }
    return protocol(std::string(what) + ": unsupported framing layer " + std::to_string(tag));
  }
}

}  // namespace

Bytes seal_packet(const FramingOptions&, std::span<const uint8_t> payload) {
  Bytes out;
  seal_frame(payload, out);
  return out;
}

Status open_packet(const FramingOptions&, std::span<const uint8_t> datagram, Bytes& payload) {
  return open_frame(datagram, "datagram", payload);
}

Bytes seal_stream_message(const FramingOptions&, std::span<const uint8_t> payload) {
  Bytes out;
  out.reserve(kStreamHeaderSize + kFrameHeader + payload.size());
  out.resize(kStreamHeaderSize);
  seal_frame(payload, out);
  const uint64_t len = out.size() - kStreamHeaderSize;
  for (size_t i = 0; i < kStreamHeaderSize; ++i) {
    out[i] = static_cast<uint8_t>(len >> (8 * (kStreamHeaderSize - 1 - i)));
  }
  return out;
}

Status parse_stream_header(const FramingOptions& opt, std::span<const uint8_t, kStreamHeaderSize> header,
                           size_t& body_length) {
  size_t len = 0;
  for (uint8_t byte : header) len = (len << 8) | byte;
  if (len > opt.max_stream_message) {
    return Status::error(core::Errc::too_large, "stream message of " + std::to_string(len) +
                                                    " bytes exceeds the limit of " +
                                                    std::to_string(opt.max_stream_message));
  }
  if (len < kFrameHeader) return protocol("stream message of " + std::to_string(len) + " bytes is too short");
  body_length = len;
  return {};
}

Status open_stream_message(const FramingOptions& opt, std::span<const uint8_t> body, Bytes& payload) {
  if (body.size() > opt.max_stream_message) {
    return Status::error(core::Errc::too_large, "stream message of " + std::to_string(body.size()) +
                                                    " bytes exceeds the limit of " +
                                                    std::to_string(opt.max_stream_message));
  }
  return open_frame(body, "stream message", payload);
}

}  // namespace memberlist::wire
