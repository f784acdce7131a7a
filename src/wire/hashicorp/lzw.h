// LZW as hashicorp/memberlist uses it for compressMsg: Go's compress/lzw with LSB bit order
// and 8-bit literals (the GIF flavour). Codes start 9 bits wide and grow to 12; Clear = 256,
// End = 257. Internal to src/wire.
#pragma once

#include <span>

#include "core/types.h"

namespace memberlist::wire::hashicorp {

// Byte for byte what Go's lzw.NewWriter(w, lzw.LSB, 8) writes for `in` in one Write and a
// Close: a leading Clear code, Clear again each time the table fills, End, and the last
// partial byte.
core::Bytes lzw_compress(std::span<const uint8_t> in);

// Decodes one LZW stream (with or without a leading Clear) into `out` (replaced). The stream
// must reach its End code; bytes after it are ignored, as Go's reader does. At most `limit`
// bytes are written: a stream that would inflate further is refused with Errc::too_large.
// Errc::protocol for a truncated stream or an invalid code. Never reads past `in`.
core::Status lzw_decompress(std::span<const uint8_t> in, size_t limit, core::Bytes& out);

}  // namespace memberlist::wire::hashicorp
