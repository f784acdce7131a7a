// Writes the fuzzers' seed corpus: every sample message encoded, a compound of them, and
// the same wrapped as datagrams and as a stream. Usage: gen_corpus <dir>
#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace fs = std::filesystem;
using namespace memberlist::wire;

static void write(const fs::path& dir, const std::string& name, const Bytes& b) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                    static_cast<std::streamsize>(b.size()));
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const fs::path root = argv[1];
  const auto codec = make_flatbuffers_codec();
  const FramingOptions opt;
  std::vector<Bytes> parts;
  Bytes stream;
  int i = 0;
  for (const auto& m : test::sample_messages()) {
    parts.push_back(codec->encode(m));
    const std::string name = "seed-" + std::to_string(i++);
    write(root / "fuzz_decode", name, parts.back());
    write(root / "fuzz_open_packet", name, seal_packet(opt, parts.back()));
    const Bytes framed = seal_stream_message(opt, parts.back());
    write(root / "fuzz_stream", name, framed);
    stream.insert(stream.end(), framed.begin(), framed.end());
  }
  const Bytes compound = codec->pack(parts);
  write(root / "fuzz_decode", "seed-compound", compound);
  write(root / "fuzz_open_packet", "seed-compound", seal_packet(opt, compound));
  write(root / "fuzz_stream", "seed-all", stream);
  return 0;
}
