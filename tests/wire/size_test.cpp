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

// Typical values: ~10-byte node names, IPv4 addresses, a sequence number past 255 (msgpack
// then spends 3 bytes on it), incarnations below 128.
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
// pushPullHeader (HEAD writes Nodes as a signed int) and one pushNodeState per node.
size_t go_push_pull(const PushPull& pp) {
  size_t n = 1 + 1 + mp_key("Join") + 1 + mp_key("Nodes") + mp_uint(pp.nodes.size()) + mp_key("UserStateLen") + 1;
  for (const PushNodeState& s : pp.nodes) {
    n += 1 + mp_key("Addr") + mp_str(4) + mp_key("Incarnation") + mp_uint(s.incarnation) + mp_key("Meta") +
         (s.meta.empty() ? 1 : mp_str(s.meta.size())) + mp_key("Name") + mp_str(s.name.size()) + mp_key("Port") +
         mp_uint(s.addr.port) + mp_key("State") + 1 + mp_key("Vsn") + mp_str(6);
  }
  return n;
}
constexpr size_t kGoCompoundHeader = 2, kGoCompoundPart = 2;

struct Row {
  std::string what;
  size_t ours;
  size_t go;
  size_t bound;  // ours may not exceed this: the size after the compaction work
};

void print(const std::vector<Row>& rows) {
  std::printf("%-52s %6s %6s\n", "", "ours", "go");
  for (const Row& r : rows) std::printf("%-52s %6zu %6zu\n", r.what.c_str(), r.ours, r.go);
}

size_t enc(const Message& m) { return codec().encode(m).size(); }

PushPull cluster_state(size_t nodes, const std::string& prefix) {
  PushPull pp;
  for (size_t i = 0; i < nodes; ++i) {
    pp.nodes.push_back({prefix + std::to_string(i), v4(10, 0, 0, static_cast<uint8_t>(i + 1), 7946), {}, 1,
                        NodeState::Alive, kVsn});
  }
  return pp;
}

// Names of ~10 bytes, sequence numbers past 255, as in a long-running cluster; the bound
// column is what each message takes now.
TEST(WireSize, MessagesAtTypicalValues) {
  const Ping ping{kSeq, kPeer, kSelfAddr, kSelf};
  const Alive alive{3, kSelf, kSelfAddr, {}, kVsn};
  const Alive alive2{3, kPeer, kPeerAddr, {}, kVsn};
  const size_t compound = codec().pack({codec().encode(ping), codec().encode(alive), codec().encode(alive2)}).size();
  const PushPull pp = cluster_state(8, "node-0.dc-");
  const std::vector<Row> rows{
      {"ping (target + source address + names)", enc(ping), go_ping(kPeer, kSeq, true, kSelf), 72},
      {"ping (target name only)", enc(Ping{kSeq, kPeer, {}, ""}), go_ping(kPeer, kSeq, false, ""), 40},
      {"indirect ping (nack, source)", enc(IndirectPing{kSeq, kPeerAddr, kPeer, true, kSelfAddr, kSelf}),
       go_indirect(kSeq, kPeer, kSelf), 88},
      {"ack (no payload)", enc(Ack{kSeq, {}}), go_ack(kSeq), 21},
      {"nack", enc(Nack{kSeq}), go_nack(kSeq), 21},
      {"alive (IPv4, no meta)", enc(alive), go_alive(3, kSelf, 0), 52},
      {"alive (IPv4, 16 B meta)", enc(Alive{3, kSelf, kSelfAddr, bytes_of(16), kVsn}), go_alive(3, kSelf, 16), 76},
      {"suspect", enc(Suspect{3, kPeer, kSelf}), go_suspect(3, kPeer, kSelf), 64},
      {"dead (graceful leave)", enc(Dead{3, kSelf, kSelf}), go_suspect(3, kSelf, kSelf), 48},
      {"dead (declared by another node)", enc(Dead{3, kPeer, kSelf}), go_suspect(3, kPeer, kSelf), 64},
      {"compound: ping + 2 alives", compound,
       go_ping(kPeer, kSeq, true, kSelf) + 2 * go_alive(3, kSelf, 0) + kGoCompoundHeader + 3 * kGoCompoundPart, 181},
      {"compound overhead bound: header", codec().pack_header_overhead(), kGoCompoundHeader, 2},
      {"compound overhead bound: per part", codec().pack_part_overhead(), kGoCompoundPart, 3},
      {"push/pull, 8 nodes (IPv4, no meta)", enc(pp), go_push_pull(pp), 420},
  };
  print(rows);
  for (const Row& r : rows) EXPECT_LE(r.ours, r.bound) << r.what;
}

// A probe round trip as the runtime sends it (default framing: magic byte + plain-layer
// tag), and the push/pull state of a small cluster as a stream message (4-byte length
// header + the same 2 bytes); Go's stream push/pull has no frame of its own. Both with
// names of ~10 bytes and with short names and small sequence numbers as in the
// benchmark (n0..n7, a young cluster).
TEST(WireSize, ProbeExchangeAndPushPull) {
  const FramingOptions plain;
  std::vector<Row> rows;
  for (const bool short_names : {false, true}) {
    const std::string self = short_names ? "n1" : kSelf, peer = short_names ? "n2" : kPeer;
    const uint32_t seq = short_names ? 100 : kSeq;
    const std::string tag = short_names ? " [n0..n7, seq 100]" : " [10-byte names, seq 1000]";
    // As the core sends them: the reply address only when the packet's source is not ours
    // to advertise, never our own name; Go always sends both.
    const size_t ack = seal_packet(plain, codec().encode(Ack{seq, {}})).size();
    const size_t go = go_ping(peer, seq, true, self) + go_ack(seq);
    const size_t with_source = seal_packet(plain, codec().encode(Ping{seq, peer, kSelfAddr, ""})).size() + ack;
    rows.push_back({"probe (ping + ack datagrams)" + tag, with_source, go, short_names ? 69u : 77u});
    const size_t bound_here = seal_packet(plain, codec().encode(Ping{seq, peer, {}, ""})).size() + ack;
    rows.push_back({"probe, bound to the advertised address" + tag, bound_here, go, short_names ? 57u : 65u});
    const PushPull pp = cluster_state(8, short_names ? "n" : "node-0.dc-");
    rows.push_back({"push/pull stream message, 8 nodes" + tag, seal_stream_message(plain, codec().encode(pp)).size(),
                    go_push_pull(pp), short_names ? 300u : 426u});
  }
  print(rows);
  std::printf("framing bytes per datagram: plain %zu, +crc %zu, +label \"prod\" %zu, +encryption %zu\n",
              kFrameHeaderOverhead, kCrcOverhead, label_overhead("prod"), kEncryptionOverhead);
  for (const Row& r : rows) EXPECT_LE(r.ours, r.bound) << r.what;
}

}  // namespace
}  // namespace memberlist::wire::test
