// libFuzzer target: the native codec's decode() on arbitrary bytes.
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto codec = memberlist::wire::make_flatbuffers_codec();
  memberlist::wire::fuzz::decode_and_check(*codec, {data, size});
  return 0;
}
