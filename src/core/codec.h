// The boundary between the protocol core and a wire format. The core encodes broadcasts
// itself (the transmit-limited queue budgets bytes), so it needs encode(); it is handed a
// codec at construction and never includes anything from src/wire.
#pragma once

#include <span>
#include <vector>

#include "core/messages.h"

namespace memberlist::core {

class Codec {
 public:
  virtual ~Codec() = default;

  // One message, self-contained (type included).
  virtual Bytes encode(const Message& msg) const = 0;

  // Several encoded messages as one datagram (a compound); one part is returned unchanged.
  virtual Bytes pack(const std::vector<Bytes>& parts) const = 0;
  // Bytes pack() adds: once per datagram, and once per part.
  virtual size_t pack_header_overhead() const = 0;
  virtual size_t pack_part_overhead() const = 0;
  // Most parts one pack() may hold; the core splits larger sets.
  virtual size_t pack_max_parts() const = 0;

  // A datagram (single message or compound) or a stream message. Appends every message that
  // decodes; returns an error if any part was malformed (the good parts are still appended).
  // Never throws, never reads past `data`.
  virtual Status decode(std::span<const uint8_t> data, std::vector<Message>& out) const = 0;

  // The stream forms, for a format whose stream messages differ from its datagrams
  // (hashicorp/memberlist's user message carries a length header on a stream). The core
  // uses these for everything it sends or reads on a stream.
  virtual Bytes encode_stream(const Message& msg) const { return encode(msg); }
  virtual Status decode_stream(std::span<const uint8_t> data, std::vector<Message>& out) const {
    return decode(data, out);
  }
};

}  // namespace memberlist::core
