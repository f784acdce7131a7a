// The layers hashicorp/memberlist puts around its messages, as free functions: CRC32
// (hasCrcMsg), compression (compressMsg with LZW), the label header (v0.3.0+) and AES-GCM
// encryption in both versions. The caller applies them in the reference's order:
//
//   datagram out: compress_if_smaller -> add_crc (peer's protocol max >= 5) -> encrypt_payload
//                 (associated data = label) -> add_label_header
//   datagram in:  remove_label_header -> decrypt_payload -> check_crc -> HashicorpCodec::decode
//                 (which also undoes compressMsg)
//   stream out:   compress_payload (always) -> encrypt_stream; the dialer writes the label
//                 header once before its first message
//   stream in:    decrypt_stream -> HashicorpCodec::decode_stream
//
// Internal to src/wire.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/types.h"

namespace memberlist::wire::hashicorp {

// ---- CRC (protocol version 5) ----
inline constexpr size_t kCrcOverhead = 5;  // [12][crc32 u32 BE]
// [hasCrcMsg][CRC32-IEEE of msg, big-endian][msg].
core::Bytes add_crc(std::span<const uint8_t> msg);
// As ingestPacket: a packet of 5 or more bytes starting with hasCrcMsg has its CRC checked
// (mismatch: Errc::protocol) and `msg` is what follows; any other packet is `msg` as it is.
core::Status check_crc(std::span<const uint8_t> packet, std::span<const uint8_t>& msg);

// ---- Compression ----
// [compressMsg] msgpack compress{Algo: 0 (LZW), Buf: LZW(msg)}, as compressPayload.
core::Bytes compress_payload(std::span<const uint8_t> msg);
// The datagram rule: the compressed form only if it is shorter, else msg unchanged.
core::Bytes compress_if_smaller(std::span<const uint8_t> msg);

// ---- Label header ----
inline constexpr uint8_t kHasLabelMsg = 244;
inline constexpr size_t kMaxLabelSize = 255;
inline size_t label_overhead(std::string_view label) { return label.empty() ? 0 : 2 + label.size(); }
// [244][len][label][msg]; msg unchanged for an empty label; Errc::invalid over 255 bytes.
core::Status add_label_header(std::string_view label, std::span<const uint8_t> msg, core::Bytes& out);
// Splits a leading label header off: `label` is empty when there is none. Errc::protocol
// for a header with length 0 or one cut short.
core::Status remove_label_header(std::span<const uint8_t> in, std::string& label, std::span<const uint8_t>& rest);

// ---- Encryption (security.go) ----
// Version 0: the plaintext is PKCS#7-padded to 16 bytes first (protocol version 1 peers);
// version 1: no padding (protocol version 2 and later). Keys of 16, 24 or 32 bytes.
size_t encrypted_length(uint8_t version, size_t plaintext_size);  // encryptedLength
size_t encrypt_overhead(uint8_t version);                         // 45 or 29: the most added
// Appends [version][nonce 12][ciphertext ‖ tag 16] to `out`. Errc::invalid for a bad
// version or key size, Errc::io if OpenSSL fails.
core::Status encrypt_payload(uint8_t version, std::span<const uint8_t> key, std::span<const uint8_t> msg,
                             std::span<const uint8_t> aad, core::Bytes& out);
// Tries every key (decryptPayload). Errc::protocol for an empty, unknown-version or too
// short payload or bad padding; Errc::rejected when no key opens it.
core::Status decrypt_payload(std::span<const core::Bytes> keys, std::span<const uint8_t> payload,
                             std::span<const uint8_t> aad, core::Bytes& plaintext);

// Streams (encryptLocalState / decryptRemoteState): [encryptMsg][L u32 BE][encrypted],
// authenticated with the first five bytes followed by the label.
inline constexpr uint8_t kEncryptMsg = 10;
inline constexpr size_t kStreamEncryptHeader = 5;
inline constexpr size_t kMaxEncryptedStream = 20u << 20;  // maxPushStateBytes
core::Status encrypt_stream(uint8_t version, std::span<const uint8_t> key, std::span<const uint8_t> msg,
                            std::string_view label, core::Bytes& out);
// The stream's length from its five-byte header; Errc::too_large over `max`, Errc::protocol
// if the first byte is not encryptMsg.
core::Status parse_stream_length(std::span<const uint8_t, kStreamEncryptHeader> header, size_t max, size_t& length);
// `message` is the whole [10][L][encrypted]; L must match what follows.
core::Status decrypt_stream(std::span<const core::Bytes> keys, std::span<const uint8_t> message, std::string_view label,
                            core::Bytes& plaintext, size_t max = kMaxEncryptedStream);

}  // namespace memberlist::wire::hashicorp
