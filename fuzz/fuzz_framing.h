// Shared by the framing fuzz targets and the seed generator: a few FramingOptions, chosen
// by the first input byte, so that every layer (label, CRC, compression, decryption with
// a fixed test key, the verify_incoming and skip_inbound_label_check paths, small bounds)
// is reachable from one corpus. The seeds are frames sealed with the same options.
#pragma once

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>

#include "wire/wire.h"

namespace memberlist::wire::fuzz {

inline constexpr size_t kConfigs = 6;

// Config `i % kConfigs`. Fixed keys: the fuzzer can only reach the plaintext behind the
// decryption through seeds sealed with them (or by breaking AES-GCM).
inline const FramingOptions& framing_config(uint8_t i) {
  static const std::array<FramingOptions, kConfigs> configs = [] {
    auto key = [](size_t n, uint8_t seed) {
      Bytes k(n);
      for (size_t j = 0; j < n; ++j) k[j] = static_cast<uint8_t>(seed + j);
      return k;
    };
    auto one_key = std::make_shared<Keyring>();
    (void)one_key->install(key(32, 0x10));
    auto three_keys = std::make_shared<Keyring>();
    (void)three_keys->install(key(16, 0x20));
    (void)three_keys->install(key(24, 0x30));
    (void)three_keys->install(key(32, 0x10));
    (void)three_keys->use(key(24, 0x30));
    std::array<FramingOptions, kConfigs> c{};
    // 0: defaults (plain frames).
    c[1].label = "fuzz";  // label, CRC, compression, no keys
    c[1].crc = c[1].compress = true;
    c[2] = c[1];  // ... and encryption
    c[2].keyring = one_key;
    c[3].keyring = three_keys;  // several keys, plaintext accepted too
    c[3].verify_incoming = false;
    c[3].compress = true;
    c[4].label = "fuzz";  // the label is assumed, never carried
    c[4].skip_inbound_label_check = true;
    c[4].keyring = one_key;
    c[5].compress = true;  // small bounds
    c[5].max_decompressed = 4096;
    c[5].max_stream_message = 2048;
    for (auto& o : c) o.max_stream_message = std::min<size_t>(o.max_stream_message, 1 << 16);
    return c;
  }();
  return configs[i % kConfigs];
}

// An error always has a kind and a message; success has neither.
inline void check_status(const FrameStatus& s) {
  if (s.ok() != (s.kind == FrameError::none) || s.ok() != s.message.empty()) {
    std::fprintf(stderr, "inconsistent FrameStatus: kind %s, message \"%s\"\n", to_string(s.kind), s.message.c_str());
    std::abort();
  }
}

}  // namespace memberlist::wire::fuzz
