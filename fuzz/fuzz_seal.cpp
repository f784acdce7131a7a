// libFuzzer target: the sending side. The first byte picks the FramingOptions
// (fuzz_framing.h), the rest is any payload: it must seal, open back unchanged (datagram
// and stream message), and with verified encryption no single bit flip may go unnoticed.
#include "fuzz_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memberlist::wire;
  if (size == 0) return 0;
  FramingOptions opt = fuzz::framing_config(data[0]);
  opt.skip_inbound_label_check = false;  // to open what we sealed, labels included
  const std::span<const uint8_t> payload(data + 1, size - 1);

  Bytes sealed, opened;
  FrameStatus s = seal_packet(opt, payload, sealed);
  fuzz::check_status(s);
  if (!s.ok()) std::abort();
  if (!open_packet(opt, sealed, opened).ok() || !std::equal(opened.begin(), opened.end(), payload.begin(), payload.end())) {
    std::fprintf(stderr, "datagram does not round-trip\n");
    std::abort();
  }
  if (!opt.compress && sealed.size() != payload.size() + packet_overhead(opt)) std::abort();

  Bytes message;
  s = seal_stream_message(opt, payload, message);
  fuzz::check_status(s);
  if (s.ok()) {
    const auto body = std::span<const uint8_t>(message).subspan(kStreamHeaderSize);
    if (!open_stream_message(opt, body, opened).ok() ||
        !std::equal(opened.begin(), opened.end(), payload.begin(), payload.end())) {
      std::fprintf(stderr, "stream message does not round-trip\n");
      std::abort();
    }
  } else if (s.kind != FrameError::too_large) {
    std::abort();
  }

  if (encrypts(opt) && opt.verify_incoming) {
    const size_t at = (size * 2654435761u) % (sealed.size() * 8);
    sealed[at / 8] ^= static_cast<uint8_t>(1u << (at % 8));
    if (open_packet(opt, sealed, opened).ok()) {
      std::fprintf(stderr, "bit flip %zu went unnoticed\n", at);
      std::abort();
    }
  }
  return 0;
}
