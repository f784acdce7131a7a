// libFuzzer target: a datagram as the runtime receives it: open_packet, then decode.
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memberlist::wire;
  static const auto codec = make_flatbuffers_codec();
  const FramingOptions opt;
  Bytes payload;
  if (open_packet(opt, {data, size}, payload).ok()) fuzz::decode_and_check(*codec, payload);
  return 0;
}
