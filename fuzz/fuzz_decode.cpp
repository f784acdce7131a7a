// libFuzzer target: the native codec's decode() on arbitrary bytes.
#include "fuzz_budget.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto codec = memberlist::wire::make_flatbuffers_codec();
  // Decoded messages cost a few times their encoded size (one compound: at most 255).
  memberlist::wire::fuzz::AllocationBudget budget(size, 64, 64 << 10);
  memberlist::wire::fuzz::decode_and_check(*codec, {data, size});
  return 0;
}
