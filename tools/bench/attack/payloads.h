// What an attacker without the key sends in the attacks of docs/security.md: shared by the
// attack tests (tests/runtime/attack_test.cpp) and the attack benchmark (attack_bench.cpp).
#pragma once

#include <functional>

#include "core/codec.h"
#include "wire/compression.h"
#include "wire/wire.h"

namespace memberlist::attack {

// A native frame whose compressed layer inflates to 40 MiB of zeros behind a plain tag,
// declaring `declared` bytes: about 41 KB, one datagram.
inline core::Bytes bomb_frame(uint32_t declared) {
  core::Bytes inner(40u << 20, 0);
  inner[0] = 0x01;  // the plain layer's tag, then zeros
  core::Bytes zlib;
  if (!wire::detail::deflate_bytes(inner, zlib)) return {};
  // The native frame: magic 'M', compressed layer 05 with the declared size (u32 BE).
  core::Bytes frame(6 + zlib.size());
  frame[0] = 0x4d;
  frame[1] = 0x05;
  for (int i = 0; i < 4; ++i) frame[2 + i] = uint8_t(declared >> (24 - 8 * i));
  std::copy(zlib.begin(), zlib.end(), frame.begin() + 6);
  return frame;
}

// `parts` messages made by `make(i)` as one compound.
inline core::Bytes compound(const core::Codec& codec, const std::function<core::Message(size_t)>& make,
                            size_t parts) {
  std::vector<core::Bytes> v;
  for (size_t i = 0; i < parts; ++i) v.push_back(codec.encode(make(i)));
  return codec.pack(v);
}

// The most pings one compound can hold (255), each asking for an ack at `reply_to`.
inline core::Bytes ping_compound(const core::Codec& codec, const core::Address& reply_to) {
  return compound(codec, [&](size_t i) { return core::Ping{uint32_t(i), "", reply_to, "x"}; }, 255);
}

// 255 application broadcasts, each from its own origin (first_origin, first_origin + 1, ...),
// so that none is a duplicate of another.
inline core::Bytes broadcast_compound(const core::Codec& codec, size_t first_origin) {
  return compound(
      codec,
      [&](size_t i) {
        return core::UserBroadcast{"origin" + std::to_string(first_origin + i), 1, 1, "", core::Bytes(8, 7)};
      },
      255);
}

// A plain frame (the attacker has no key), optionally compressed.
inline core::Bytes plain_frame(const core::Bytes& payload, bool compress) {
  wire::FramingOptions fo;
  fo.compress = compress;
  return wire::seal_packet(fo, payload);
}

// The 4-byte length header of a native stream message declaring `len` bytes of body.
inline core::Bytes stream_header(uint32_t len) {
  return {uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8), uint8_t(len)};
}

}  // namespace memberlist::attack
