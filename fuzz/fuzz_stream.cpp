// libFuzzer target: a TCP stream as the runtime reads it: header, body, open, decode,
// repeated until the bytes run out. A small limit makes the too_large path reachable.
#include <cstdlib>

#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memberlist::wire;
  static const auto codec = make_flatbuffers_codec();
  FramingOptions opt;
  opt.max_stream_message = 1 << 16;
  std::span<const uint8_t> rest(data, size);
  while (rest.size() >= kStreamHeaderSize) {
    size_t len = 0;
    if (!parse_stream_header(opt, rest.first<kStreamHeaderSize>(), len).ok()) return 0;
    if (len > opt.max_stream_message) std::abort();  // parse_stream_header must refuse it
    rest = rest.subspan(kStreamHeaderSize);
    if (rest.size() < len) return 0;  // the peer hung up mid-message
    Bytes payload;
    if (open_stream_message(opt, rest.first(len), payload).ok()) fuzz::decode_and_check(*codec, payload);
    rest = rest.subspan(len);
  }
  return 0;
}
