// A tiny test-only codec: core::Message <-> bytes, so the core can be tested without src/wire.
// Format: [variant index][fields...]; compound = [0xC7][count u8][count x len u32][parts].
#pragma once

#include "core/codec.h"

namespace memberlist::test {

class TestCodec : public core::Codec {
 public:
  explicit TestCodec(size_t max_parts = 255) : max_parts_(max_parts) {}
  core::Bytes encode(const core::Message& msg) const override;
  core::Bytes pack(const std::vector<core::Bytes>& parts) const override;
  size_t pack_header_overhead() const override { return 2; }
  size_t pack_part_overhead() const override { return 4; }
  size_t pack_max_parts() const override { return max_parts_; }
  core::Status decode(std::span<const uint8_t> data, std::vector<core::Message>& out) const override;

  // Convenience for tests: decode and ignore errors.
  std::vector<core::Message> decode_all(std::span<const uint8_t> data) const {
    std::vector<core::Message> out;
    (void)decode(data, out);
    return out;
  }

 private:
  size_t max_parts_;
};

}  // namespace memberlist::test
