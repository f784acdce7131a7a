// libFuzzer target: hashicorp/memberlist's format. The first byte picks the entry point:
// 0 the datagram decoder, 1 the stream decoder, 2 the LZW decoder (with a small limit, so
// the too_large path is reachable), 3 the stream reader's length probe. Whatever decodes
// must survive encode -> decode.
#include "fuzz_check.h"
#include "wire/hashicorp/codec.h"
#include "wire/hashicorp/lzw.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memberlist::wire::hashicorp;
  static const auto codec = make_hashicorp_codec();
  if (size == 0) return 0;
  const std::span<const uint8_t> in(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: memberlist::wire::fuzz::decode_and_check(*codec, in); break;
    case 1: {
      std::vector<memberlist::core::Message> out, again;
      if (!codec->decode_stream(in, out).ok()) break;
      if (out.size() != 1 || !codec->decode_stream(codec->encode_stream(out[0]), again).ok() || again.size() != 1 ||
          !memberlist::wire::test::same(out[0], again[0])) {
        std::fprintf(stderr, "stream message does not round-trip\n");
        std::abort();
      }
      break;
    }
    case 3: {
      size_t n = 0, need = 0;
      if (!codec->stream_message_size(in, n, need).ok()) break;
      if (n > in.size() || (n == 0 && need <= in.size())) std::abort();
      break;
    }
    default: {
      memberlist::core::Bytes out, again;
      if (!lzw_decompress(in, 4096, out).ok()) break;
      if (out.size() > 4096 || !lzw_decompress(lzw_compress(out), 4096, again).ok() || again != out) std::abort();
    }
  }
  return 0;
}
