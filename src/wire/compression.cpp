#include "wire/compression.h"

#include <string>

#include <zlib.h>

namespace memberlist::wire::detail {

bool deflate_bytes(std::span<const uint8_t> in, core::Bytes& out) {
  uLongf size = compressBound(static_cast<uLong>(in.size()));
  out.resize(size);
  if (compress2(out.data(), &size, in.data(), static_cast<uLong>(in.size()), Z_DEFAULT_COMPRESSION) != Z_OK) {
    return false;
  }
  out.resize(size);
  return true;
}

core::Status inflate_bytes(std::span<const uint8_t> in, size_t size, core::Bytes& out) {
  auto fail = [](std::string why) {
    return core::Status::error(core::Errc::protocol, "decompression failed: " + why);
  };
  if (size == 0) return fail("empty result");
  if (in.empty() || size / kMaxInflateRatio > in.size()) {
    return fail("declared size " + std::to_string(size) + " is impossible for " + std::to_string(in.size()) +
                " compressed bytes");
  }
  out.resize(size);
  uLongf out_len = static_cast<uLongf>(size);
  uLong in_len = static_cast<uLong>(in.size());
  const int rc = uncompress2(out.data(), &out_len, in.data(), &in_len);
  if (rc == Z_BUF_ERROR) return fail("output larger than the declared size");
  if (rc != Z_OK) return fail(std::string("zlib: ") + zError(rc));
  if (out_len != size) return fail("output shorter than the declared size");
  if (in_len != in.size()) return fail("trailing bytes after the compressed data");
  return {};
}

}  // namespace memberlist::wire::detail
