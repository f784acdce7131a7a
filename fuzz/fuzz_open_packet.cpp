// libFuzzer target: a datagram as the runtime receives it: open_packet, then decode.
// The first byte picks the FramingOptions (fuzz_framing.h); the rest is the datagram.
// Whatever opens must open again, unchanged, after sealing it anew with the same options.
#include "fuzz_budget.h"
#include "fuzz_check.h"
#include "fuzz_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memberlist::wire;
  static const auto codec = make_flatbuffers_codec();
  if (size == 0) return 0;
  const FramingOptions& opt = fuzz::framing_config(data[0]);
  // A datagram inflates to at most kMaxInflatedPacket whatever it claims; the constant covers
  // that buffer (grown by doubling), the messages decoded from it and sealing it anew.
  fuzz::AllocationBudget budget(size, 64, 1 << 20);
  Bytes payload;
  const FrameStatus s = open_packet(opt, {data + 1, size - 1}, payload);
  fuzz::check_status(s);
  if (!s.ok()) return 0;
  fuzz::decode_and_check(*codec, payload);
  // (A node that skips the inbound label check cannot open its own labelled frames.)
  if (opt.skip_inbound_label_check) return 0;
  Bytes sealed, again;
  if (!seal_packet(opt, payload, sealed).ok() || !open_packet(opt, sealed, again).ok() || again != payload) {
    std::fprintf(stderr, "opened payload does not survive seal -> open\n");
    std::abort();
  }
  return 0;
}
