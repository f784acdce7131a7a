// libFuzzer target: a TCP stream as the runtime reads it: header, body, open, decode,
// repeated until the bytes run out. The first byte picks the FramingOptions
// (fuzz_framing.h), whose stream limit is small so that the too_large path is reachable.
#include "fuzz_budget.h"
#include "fuzz_check.h"
#include "fuzz_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memberlist::wire;
  static const auto codec = make_flatbuffers_codec();
  if (size == 0) return 0;
  const FramingOptions& opt = fuzz::framing_config(data[0]);
  // A stream message may honestly inflate by deflate's best ratio (kMaxInflateRatio, 1032),
  // never to the size it merely claims: twice that ratio covers the buffer's doubling.
  fuzz::AllocationBudget budget(size, 4 * 1032, 1 << 20);
  std::span<const uint8_t> rest(data + 1, size - 1);
  while (rest.size() >= kStreamHeaderSize) {
    size_t len = 0;
    const FrameStatus h = parse_stream_header(opt, rest.first<kStreamHeaderSize>(), len);
    fuzz::check_status(h);
    if (!h.ok()) return 0;
    if (len > opt.max_stream_message) std::abort();  // parse_stream_header must refuse it
    rest = rest.subspan(kStreamHeaderSize);
    if (rest.size() < len) return 0;  // the peer hung up mid-message
    Bytes payload;
    const FrameStatus s = open_stream_message(opt, rest.first(len), payload);
    fuzz::check_status(s);
    if (s.ok()) {
      fuzz::decode_and_check(*codec, payload);
      Bytes message, again;
      const FrameStatus r = opt.skip_inbound_label_check ? FrameStatus{} : seal_stream_message(opt, payload, message);
      // Sealing anew may compress differently, so it may hit the (small) limit; else it must open.
      if (!r.ok() && r.kind != FrameError::too_large) std::abort();
      if (!message.empty() &&
          (!open_stream_message(opt, std::span<const uint8_t>(message).subspan(kStreamHeaderSize), again).ok() ||
           again != payload)) {
        std::fprintf(stderr, "opened payload does not survive seal -> open\n");
        std::abort();
      }
    }
    rest = rest.subspan(len);
  }
  return 0;
}
