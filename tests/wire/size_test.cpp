// Bytes on the wire: the encoded size of each message kind at typical values, next to
// hashicorp/memberlist's msgpack sizes for the same content (computed from the layout in
// memberlist-protocol.md §2.3), and a typical probe exchange with framing. Prints a table
// (run `wire_tests --gtest_filter='WireSize.*'`) and fails when a message grows past the
// bound it has now, so a size regression is noticed.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "test_util.h"

namespace memberlist::wire::test {
namespace {

const core::Codec& codec() {
  static const auto c = make_flatbuffers_codec();
  return *c;
}

// Typical values: ~10-character node names, IPv4 addresses, a sequence number past 127
// (msgpack then spends 3 bytes on it), incarnations below 128.
const std::string kSelf = "node-01.dc";  // 10 bytes
const std::string kPeer = "node-02.dc";
const Address kSelfAddr = v4(10, 0, 0, 1, 7946);
const Address kPeerAddr = v4(10, 0, 0, 2, 7946);
const Vsn kVsn{1, 5, 2, 0, 0, 0};
constexpr uint32_t kSeq = 1000;

// msgpack sizes of the reference's encoding (type byte included), see §2.2/§2.3.
size_t mp_str(size_t n) { return (n < 32 ? 1 : n < 65536 ? 3 : 5) + n; }
size_t mp_uint(uint64_t v) { return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : 5; }
size_t mp_key(const char* k) { return mp_str(std::string(k).size()); }
size_t go_ping(const std::string& node, uint32_t seq, bool with_source, const std::string& source_node) {
  size_t n = 1 + 1 + mp_key("Node") + mp_str(node.size()) + mp_key("SeqNo") + mp_uint(seq);
  if (with_source) {
    n += mp_key("SourceAddr") + mp_str(4) + mp_key("SourcePort") + mp_uint(7946);
    if (!source_node.empty()) n += mp_key("SourceNode") + mp_str(source_node.size());
  }
  return n;
}
size_t go_ack(uint32_t seq) { return 1 + 1 + mp_key("Payload") + 1 + mp_key("SeqNo") + mp_uint(seq); }
size_t go_nack(uint32_t seq) { return 1 + 1 + mp_key("SeqNo") + mp_uint(seq); }
size_t go_suspect(uint32_t inc, const std::string& node, const std::string& from) {
  return 1 + 1 + mp_key("From") + mp_str(from.size()) + mp_key("Incarnation") + mp_uint(inc) + mp_key("Node") +
         mp_str(node.size());
}
size_t go_alive(uint32_t inc, const std::string& node, size_t meta) {
  return 1 + 1 + mp_key("Addr") + mp_str(4) + mp_key("Incarnation") + mp_uint(inc) + mp_key("Meta") +
         (meta ? mp_str(meta) : 1) + mp_key("Node") + mp_str(node.size()) + mp_key("Port") + mp_uint(7946) +
         mp_key("Vsn") + mp_str(6);
}
size_t go_indirect(uint32_t seq, const std::string& node, const std::string& source_node) {
  return 1 + 1 + mp_key("Nack") + 1 + mp_key("Node") + mp_str(node.size()) + mp_key("Port") + mp_uint(7946) +
         mp_key("SeqNo") + mp_uint(seq) + mp_key("SourceAddr") + mp_str(4) + mp_key("SourceNode") +
         mp_str(source_node.size()) + mp_key("SourcePort") + mp_uint(7946) + mp_key("Target") + mp_str(4);
}
constexpr size_t kGoCompoundHeader = 2, kGoCompoundPart = 2;

struct Row {
  const char* what;
  size_t ours;
  size_t go;
  size_t bound;  // ours may not exceed this (the size after the compaction work)
};

void print(const std::vector<Row>& rows) {
  std::printf("%-44s %6s %6s\n", "message (typical values)", "ours", "go");
  for (const Row& r : rows) std::printf("%-44s %6zu %6zu\n", r.what, r.ours, r.go);
}

size_t enc(const Message& m) { return codec().encode(m).size(); }

TEST(WireSize, MessagesAtTypicalValues) {
  const Ping ping{kSeq, kPeer, kSelfAddr, kSelf};
  const Alive alive{3, kSelf, kSelfAddr, {}, kVsn};
  const Alive alive2{3, kPeer, kPeerAddr, {}, kVsn};
  const size_t ping_sz = enc(ping), alive_sz = enc(alive);
  const size_t compound = codec().pack({codec().encode(ping), codec().encode(alive), codec().encode(alive2)}).size();
  const std::vector<Row> rows{
      {"ping (target + source addr + names)", ping_sz, go_ping(kPeer, kSeq, true, kSelf), 1000},
      {"ping (target name only, seq 1)", enc(Ping{1, kPeer, {}, ""}), go_ping(kPeer, 1, false, ""), 1000},
      {"indirect ping (nack, source)", enc(IndirectPing{kSeq, kPeerAddr, kPeer, true, kSelfAddr, kSelf}),
       go_indirect(kSeq, kPeer, kSelf), 1000},
      {"ack (no payload)", enc(Ack{kSeq, {}}), go_ack(kSeq), 1000},
      {"nack", enc(Nack{kSeq}), go_nack(kSeq), 1000},
      {"alive (IPv4, no meta)", alive_sz, go_alive(3, kSelf, 0), 1000},
      {"alive (IPv4, 16 B meta)", enc(Alive{3, kSelf, kSelfAddr, bytes_of(16), kVsn}), go_alive(3, kSelf, 16), 1000},
      {"suspect", enc(Suspect{3, kPeer, kSelf}), go_suspect(3, kPeer, kSelf), 1000},
      {"dead (graceful leave)", enc(Dead{3, kSelf, kSelf}), go_suspect(3, kSelf, kSelf), 1000},
      {"compound: ping + 2 alives",
       compound, go_ping(kPeer, kSeq, true, kSelf) + 2 * go_alive(3, kSelf, 0) + kGoCompoundHeader + 3 * kGoCompoundPart,
       1000},
      {"compound overhead: header", codec().pack_header_overhead(), kGoCompoundHeader, 1000},
      {"compound overhead: per part", codec().pack_part_overhead(), kGoCompoundPart, 1000},
  };
  print(rows);
  for (const Row& r : rows) EXPECT_LE(r.ours, r.bound) << r.what;
}

// One probe round trip on the wire as the runtime sends it (framing included): a ping and
// its ack, plain and with CRC + label + encryption. Go: a ping carries its type byte; CRC
// (5), label (2 + len) and encryption (29) are added the same way.
TEST(WireSize, ProbeExchange) {
  const Bytes ping = codec().encode(Ping{kSeq, kPeer, kSelfAddr, kSelf});
  const Bytes ack = codec().encode(Ack{kSeq, {}});
  const size_t go = go_ping(kPeer, kSeq, true, kSelf) + go_ack(kSeq);
  const FramingOptions plain;
  const size_t ours_plain = seal_packet(plain, ping).size() + seal_packet(plain, ack).size();
  std::printf("probe exchange (ping + ack), plain framing: ours %zu, go %zu\n", ours_plain, go);
  std::printf("framing bytes per datagram: plain %zu, +crc %zu, +label \"prod\" %zu, +encryption %zu\n",
              kFrameHeaderOverhead, kCrcOverhead, label_overhead("prod"), kEncryptionOverhead);
  EXPECT_LE(ours_plain, 1000u);
}

}  // namespace
}  // namespace memberlist::wire::test
