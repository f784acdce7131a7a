// Reads golden/vectors.txt (written by golden/gen.go from Go's own encoders): one vector a
// line, "<kind> <name> <fields>...".
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace memberlist::wire::hashicorp::test {

using Bytes = std::vector<uint8_t>;

// Hex to bytes; "-" is empty and "zeros:N" is N zero bytes.
inline Bytes unhex(const std::string& s) {
  if (s == "-") return {};
  if (s.rfind("zeros:", 0) == 0) return Bytes(std::stoul(s.substr(6)), 0);
  if (s.size() % 2 != 0) throw std::runtime_error("odd hex: " + s);
  Bytes out;
  for (size_t i = 0; i < s.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
  return out;
}

inline std::string hex(const Bytes& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

// name -> fields after the name, for the lines of one kind.
inline std::map<std::string, std::vector<std::string>> golden(const std::string& kind) {
  std::ifstream f(ML_HASHICORP_GOLDEN);
  if (!f) throw std::runtime_error("cannot open " ML_HASHICORP_GOLDEN);
  std::map<std::string, std::vector<std::string>> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string k, name, field;
    if (!(in >> k >> name) || k != kind) continue;
    auto& fields = out[name];
    while (in >> field) fields.push_back(field);
  }
  return out;
}

}  // namespace memberlist::wire::hashicorp::test
