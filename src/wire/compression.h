// zlib (deflate) for the compression layer of the framing. Internal to src/wire.
#pragma once

#include <span>

#include "core/types.h"

namespace memberlist::wire::detail {

// deflate never expands data by more than this factor the other way round: a stream that
// claims to inflate beyond compressed_size * kMaxInflateRatio is forged, and is refused
// before any memory is allocated for it.
inline constexpr size_t kMaxInflateRatio = 1032;

// zlib-compresses `in`; false only if zlib fails.
bool deflate_bytes(std::span<const uint8_t> in, core::Bytes& out);

// The output buffer starts at this size (or 4x the input, if larger) and doubles as zlib fills it.
inline constexpr size_t kInflateFirstStep = 16 * 1024;

// Inflates exactly `size` bytes (the size the sender declared, already bounded by the
// caller) from `in`, which must be one complete zlib stream with nothing after it. `out`
// grows with the output, so a forged stream allocates about what it inflates to (at most
// twice that), not `size`.
core::Status inflate_bytes(std::span<const uint8_t> in, size_t size, core::Bytes& out);

}  // namespace memberlist::wire::detail
