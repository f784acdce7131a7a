// AES-GCM through OpenSSL's EVP interface: the encryption layer of the framing.
// Internal to src/wire (framing.cpp and the tests use it).
#pragma once

#include <span>

#include "core/types.h"

namespace memberlist::wire::detail {

inline constexpr size_t kGcmNonceSize = 12;  // random per message (RAND_bytes)
inline constexpr size_t kGcmTagSize = 16;

// Appends nonce ‖ ciphertext ‖ tag to `out`. The cipher (AES-128/192/256) follows the key
// size (16/24/32 bytes). Errc::invalid for a bad key size, Errc::io if OpenSSL fails.
core::Status aes_gcm_seal(std::span<const uint8_t> key, std::span<const uint8_t> aad,
                          std::span<const uint8_t> plaintext, core::Bytes& out);

// Opens nonce ‖ ciphertext ‖ tag with each key in turn; true (and `plaintext` set) for the
// first key that authenticates it, false if none does or the input is too short.
bool aes_gcm_open(std::span<const core::Bytes> keys, std::span<const uint8_t> aad,
                  std::span<const uint8_t> sealed, core::Bytes& plaintext);

}  // namespace memberlist::wire::detail
