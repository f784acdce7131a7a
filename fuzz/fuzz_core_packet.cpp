// libFuzzer target: a datagram's payload handed to a protocol core that knows a few members.
// One datagram must never make the core send more than max_replies_per_packet datagrams at
// once, open a stream, or hold more than a small multiple of its size (fuzz_budget.h).
#include "core/core.h"
#include "fuzz_budget.h"
#include "wire/wire.h"

using namespace memberlist;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto codec = wire::make_flatbuffers_codec();
  core::Config cfg = core::Config::local();
  cfg.name = "target";
  cfg.seed = 1;
  core::Instant now{};
  core::Core c(cfg, codec, now);
  std::vector<core::NodeInfo> members;
  for (uint8_t i = 1; i <= 3; ++i) {
    core::NodeInfo n;
    n.name = "n" + std::to_string(i);
    n.addr = core::Address::v4(10, 0, 0, i, 7946);
    n.vsn = c.local_node().vsn;
    n.incarnation = 1;
    members.push_back(n);
  }
  c.seed_members(members, now);
  while (c.poll_transmit() || c.poll_stream() || c.poll_event() || c.poll_notification()) {
  }
  size_t transmits = 0, streams = 0;
  {
    // Decoded messages, node records and notifications: a few hundred bytes for a part of
    // a few dozen; the constant covers the first allocations of the core's tables.
    wire::fuzz::AllocationBudget budget(size, 64, 256 << 10);
    c.handle_packet(core::Address::v4(10, 0, 0, 9, 7946), {data, size}, now);
    while (c.poll_transmit()) ++transmits;
    while (c.poll_stream()) ++streams;
  }
  if (transmits > cfg.max_replies_per_packet || streams != 0) {
    std::fprintf(stderr, "one datagram caused %zu datagrams and %zu streams\n", transmits, streams);
    std::abort();
  }
  return 0;
}
