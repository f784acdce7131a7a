// The wire layer: the native FlatBuffers codec, and framing of datagrams and stream
// messages. Framing is independent of the codec: later issues add label, CRC, compression
// and encryption here (FramingOptions grows; the runtime just calls seal/open).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "core/codec.h"

namespace memberlist::wire {

using core::Bytes;
using core::Status;

// The native codec: one FlatBuffers table per message (schema/memberlist.fbs), every input
// checked by the FlatBuffers verifier before any field is read.
std::shared_ptr<const core::Codec> make_flatbuffers_codec();

struct FramingOptions {
  size_t max_stream_message = 20u << 20;   // largest stream message accepted (bytes)
};

// Datagrams: what the runtime writes to / reads from UDP around the codec's bytes.
Bytes seal_packet(const FramingOptions& opt, std::span<const uint8_t> payload);
Status open_packet(const FramingOptions& opt, std::span<const uint8_t> datagram, Bytes& payload);

// Stream messages: a 4-byte big-endian length header, then the sealed message.
inline constexpr size_t kStreamHeaderSize = 4;
Bytes seal_stream_message(const FramingOptions& opt, std::span<const uint8_t> payload);
// Reads the header; an error if the length is over the limit.
Status parse_stream_header(const FramingOptions& opt, std::span<const uint8_t, kStreamHeaderSize> header,
                           size_t& body_length);
Status open_stream_message(const FramingOptions& opt, std::span<const uint8_t> body, Bytes& payload);

}  // namespace memberlist::wire
