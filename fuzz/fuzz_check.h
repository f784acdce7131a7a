// Shared by the fuzz targets: decode, and for every message that decodes, check that it
// survives encode -> decode unchanged (a decoder that accepts what the encoder cannot
// reproduce, or the reverse, is a bug even without a crash).
#pragma once

#include <cstdio>
#include <cstdlib>

#include "test_util.h"

namespace memberlist::wire::fuzz {

inline void decode_and_check(const core::Codec& codec, std::span<const uint8_t> data) {
  std::vector<core::Message> out;
  const core::Status s = codec.decode(data, out);
  if (!s.ok() && s.message.empty()) {
    std::fprintf(stderr, "error status without a message\n");
    std::abort();
  }
  for (const core::Message& m : out) {
    std::vector<core::Message> again;
    const core::Status s2 = codec.decode(codec.encode(m), again);
    if (!s2.ok() || again.size() != 1 || !test::same(m, again[0])) {
      std::fprintf(stderr, "decoded message does not round-trip: %s\n", s2.message.c_str());
      std::abort();
    }
  }
}

}  // namespace memberlist::wire::fuzz
