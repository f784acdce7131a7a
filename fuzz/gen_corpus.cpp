// Writes the fuzzers' seed corpus: every sample message encoded, a compound of them, and
// the same sealed as datagrams and as stream messages with every framing config of
// fuzz_framing.h (the config's number is the first byte). Usage: gen_corpus <dir>
#include <filesystem>
#include <fstream>

#include "fuzz_framing.h"
#include "test_util.h"
#include "wire/hashicorp/codec.h"
#include "wire/hashicorp/framing.h"
#include "wire/hashicorp/lzw.h"

namespace fs = std::filesystem;
using namespace memberlist::wire;

static void write(const fs::path& dir, const std::string& name, const Bytes& b) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                    static_cast<std::streamsize>(b.size()));
}

static Bytes with_config(uint8_t config, const Bytes& frame) {
  Bytes out{config};
  out.insert(out.end(), frame.begin(), frame.end());
  return out;
}

// A frame sealed for a receiver of config `c`. With skip_inbound_label_check the receiver
// expects no label layer: seal with the label (it is the GCM AAD), then cut the layer out.
static Bytes frame_for(uint8_t c, const Bytes& payload, bool stream) {
  FramingOptions opt = fuzz::framing_config(c);
  opt.max_stream_message = 20u << 20;  // seeds may be larger than the receiver's limit
  Bytes out;
  if (stream) {
    (void)seal_stream_message(opt, payload, out);
  } else {
    (void)seal_packet(opt, payload, out);
  }
  if (opt.skip_inbound_label_check && !opt.label.empty()) {
    const size_t at = stream ? kStreamHeaderSize : 0;
    const size_t cut = 2 + opt.label.size();
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(at + 1), out.begin() + static_cast<std::ptrdiff_t>(at + 1 + cut));
    if (stream) {
      const size_t len = out.size() - kStreamHeaderSize;
      for (size_t i = 0; i < kStreamHeaderSize; ++i) out[i] = static_cast<uint8_t>(len >> (8 * (3 - i)));
    }
  }
  // The seed must get through every layer of its receiver (or hit the receiver's small
  // stream limit), else the fuzzer would start outside the decryption.
  const FramingOptions& rx = fuzz::framing_config(c);
  Bytes opened;
  const FrameStatus s = stream ? open_stream_message(rx, std::span<const uint8_t>(out).subspan(kStreamHeaderSize), opened)
                               : open_packet(rx, out, opened);
  if (!(s.ok() && opened == payload) && !(stream && s.kind == FrameError::too_large)) {
    std::fprintf(stderr, "gen_corpus: seed for config %d does not open: %s\n", c, s.message.c_str());
    std::exit(1);
  }
  return out;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const fs::path root = argv[1];
  const auto codec = make_flatbuffers_codec();
  std::vector<Bytes> parts;
  for (const auto& m : test::sample_messages()) parts.push_back(codec->encode(m));
  const Bytes compound = codec->pack(parts);
  for (size_t i = 0; i < parts.size(); ++i) write(root / "fuzz_decode", "seed-" + std::to_string(i), parts[i]);
  write(root / "fuzz_decode", "seed-compound", compound);
  // The other forms the format has: IPv6 addresses, a Vsn other than the default (which is
  // left out), metadata, and a compound as gossip sends it.
  using namespace test;
  const Address six = v6_all_bits(7946);
  const std::vector<Message> variants{
      Ping{70000, "n2", six, "n1"},
      IndirectPing{9, six, "n3", false, v4(10, 0, 0, 1, 7946), "n1"},
      Alive{5, "n1", six, bytes_of(20), {1, 5, 3, 1, 2, 1}},
      Dead{4, "n2", "n1"},
  };
  for (size_t i = 0; i < variants.size(); ++i) {
    write(root / "fuzz_decode", "seed-variant-" + std::to_string(i), codec->encode(variants[i]));
  }
  write(root / "fuzz_decode", "seed-gossip",
        codec->pack({codec->encode(variants[2]), codec->encode(Suspect{2, "n3", "n1"}), codec->encode(variants[3])}));

  // The core's input is the codec's: the same seeds, and compounds of requests that ask for
  // replies (the amplification the reply budget stops).
  fs::create_directories(root / "fuzz_core_packet");
  fs::copy(root / "fuzz_decode", root / "fuzz_core_packet", fs::copy_options::overwrite_existing);
  std::vector<Bytes> pings, indirect;
  for (uint32_t i = 0; i < 255; ++i) {
    pings.push_back(codec->encode(Ping{i, "target", v4(10, 0, 0, 7, 7946), "x"}));
    indirect.push_back(codec->encode(IndirectPing{i, v4(10, 0, 0, 8, 7946), "n1", true, {}, "x"}));
  }
  write(root / "fuzz_core_packet", "seed-pings", codec->pack(pings));
  write(root / "fuzz_core_packet", "seed-indirect", codec->pack(indirect));

  for (uint8_t c = 0; c < fuzz::kConfigs; ++c) {
    const std::string cfg = "seed-c" + std::to_string(c) + "-";
    Bytes stream{c};
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string name = cfg + std::to_string(i);
      write(root / "fuzz_open_packet", name, with_config(c, frame_for(c, parts[i], false)));
      const Bytes framed = frame_for(c, parts[i], true);
      write(root / "fuzz_stream", name, with_config(c, framed));
      stream.insert(stream.end(), framed.begin(), framed.end());
      write(root / "fuzz_seal", name, with_config(c, parts[i]));
    }
    write(root / "fuzz_open_packet", cfg + "compound", with_config(c, frame_for(c, compound, false)));
    write(root / "fuzz_stream", cfg + "all", stream);
    // Compressible payloads, so that the compressed layer appears in the seeds.
    write(root / "fuzz_open_packet", cfg + "zeros", with_config(c, frame_for(c, Bytes(600, 0), false)));
    write(root / "fuzz_stream", cfg + "zeros", with_config(c, frame_for(c, Bytes(600, 0), true)));
  }
  // fuzz_hashicorp: [entry point][bytes] (see the target).
  const auto hc = memberlist::wire::hashicorp::make_hashicorp_codec();
  std::vector<Bytes> hc_parts;
  for (const auto& m : test::sample_messages()) {
    const size_t i = hc_parts.size();
    hc_parts.push_back(hc->encode(m));
    write(root / "fuzz_hashicorp", "seed-" + std::to_string(i), with_config(0, hc_parts.back()));
    write(root / "fuzz_hashicorp", "seed-stream-" + std::to_string(i), with_config(1, hc->encode_stream(m)));
    write(root / "fuzz_hashicorp", "seed-reader-" + std::to_string(i), with_config(3, hc->encode_stream(m)));
    write(root / "fuzz_hashicorp", "seed-lzw-" + std::to_string(i), with_config(2, memberlist::wire::hashicorp::lzw_compress(hc_parts.back())));
  }
  write(root / "fuzz_hashicorp", "seed-compound", with_config(0, hc->pack(hc_parts)));
  write(root / "fuzz_hashicorp", "seed-compressed", with_config(0, memberlist::wire::hashicorp::compress_payload(hc->pack(hc_parts))));
  return 0;
}
