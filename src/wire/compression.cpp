#include "wire/compression.h"

#include <algorithm>
#include <string>

#include <zlib.h>

namespace memberlist::wire::detail {

namespace {

// One deflate and one inflate stream per thread, reset for every message: zlib's
// deflateInit allocates and clears about 270 KiB of state, which for a small datagram costs
// far more than compressing it. Memory level 5 instead of zlib's 8: its hash table (cleared
// at every reset) and symbol buffer are 8 KiB each instead of 64, which our messages (a
// datagram, a push/pull) do not need: at 2,000 nodes a push/pull compresses as well. Any
// inflater reads the output.
constexpr int kDeflateMemLevel = 5;
constexpr int kDeflateWindowBits = 15;  // zlib's default, the zlib format (RFC 1950)

struct Deflater {
  z_stream z{};
  bool ok = false;
  Deflater() {
    ok = deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kDeflateWindowBits, kDeflateMemLevel,
                      Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Deflater() {
    if (ok) deflateEnd(&z);
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
};

struct Inflater {
  z_stream z{};
  bool ok = false;
  Inflater() { ok = inflateInit(&z) == Z_OK; }
  ~Inflater() {
    if (ok) inflateEnd(&z);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

}  // namespace

bool deflate_bytes(std::span<const uint8_t> in, core::Bytes& out) {
  thread_local Deflater d;
  if (!d.ok || deflateReset(&d.z) != Z_OK) return false;
  uLong bound = deflateBound(&d.z, static_cast<uLong>(in.size()));
  out.resize(bound);
  d.z.next_in = const_cast<Bytef*>(in.data());  // zlib's API is not const-correct
  d.z.avail_in = static_cast<uInt>(in.size());
  d.z.next_out = out.data();
  d.z.avail_out = static_cast<uInt>(bound);
  if (in.size() > UINT32_MAX || deflate(&d.z, Z_FINISH) != Z_STREAM_END) return false;
  out.resize(d.z.total_out);
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
  if (in.size() > UINT32_MAX || size > UINT32_MAX) return fail("too large");
  thread_local Inflater f;
  if (!f.ok || inflateReset(&f.z) != Z_OK) return fail("zlib: cannot initialize");
  f.z.next_in = const_cast<Bytef*>(in.data());  // zlib's API is not const-correct
  f.z.avail_in = static_cast<uInt>(in.size());
  // The buffer grows with what zlib produces (doubling), never to the declared size up front:
  // garbage that claims megabytes costs what it really inflates to, not what it claims.
  out.clear();
  out.resize(std::min(size, std::max(kInflateFirstStep, in.size() * 4)));
  f.z.next_out = out.data();
  f.z.avail_out = static_cast<uInt>(out.size());
  for (;;) {
    const int rc = inflate(&f.z, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(std::string("zlib: ") + zError(rc));
    if (f.z.avail_out == 0) {
      if (out.size() == size) return fail("output larger than the declared size");
      const size_t produced = f.z.total_out;
      out.resize(std::min(size, out.size() * 2));
      f.z.next_out = out.data() + produced;
      f.z.avail_out = static_cast<uInt>(out.size() - produced);
    } else if (f.z.avail_in == 0) {
      return fail("zlib: " + std::string(zError(Z_DATA_ERROR)) + " (truncated stream)");
    }
  }
  if (f.z.total_out != size) return fail("output shorter than the declared size");
  if (f.z.avail_in != 0) return fail("trailing bytes after the compressed data");
  return {};
}

}  // namespace memberlist::wire::detail
