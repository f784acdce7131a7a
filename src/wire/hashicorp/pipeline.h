// hashicorp/memberlist's layers in the runtime's terms: the datagram and stream pipelines of
// a node in hashicorp mode (Options::wire_format), built from framing.h, with the same
// FramingOptions and FrameStatus as the native framing so that the runtime counts and logs
// refusals the same way. Which FramingOptions apply here:
//   label, skip_inbound_label_check: the label header (upstream v0.3.0+; 0.2.2 has none),
//     bound into encryption as associated data, written by a dialer once per stream;
//   compress: LZW compressMsg, on datagrams only when smaller, on streams always (as Go);
//   keyring, verify_incoming, verify_outgoing: AES-GCM, version 0 (PKCS#7) when our protocol
//     version is 1, else version 1 (encryptionVersion);
//   crc: not used; a datagram carries a CRC when the peer's protocol maximum is 5 or more
//     (the caller says so), as Go's rawSendMsgPacket decides;
//   max_stream_message, max_decompressed: go into the codec's limits (make_runtime_codec).
#pragma once

#include <memory>

#include "wire/hashicorp/codec.h"
#include "wire/wire.h"

namespace memberlist::wire::hashicorp {

// Go's encryptionVersion: 0 for protocol version 1, else 1.
inline uint8_t encryption_version(uint8_t protocol_version) { return protocol_version <= 1 ? 0 : 1; }

// Most bytes the layers add to a datagram (label, CRC, encryption v0 with padding).
size_t packet_overhead(const FramingOptions& opt, bool assume_encryption);

// Datagram out: compress if smaller -> CRC (if `crc`) -> encrypt -> label header.
FrameStatus seal_packet(const FramingOptions& opt, uint8_t enc_version, bool crc, std::span<const uint8_t> payload,
                        Bytes& datagram);
// Datagram in: label -> decrypt (plaintext accepted only without verify_incoming) -> CRC.
// `payload` is what HashicorpCodec::decode reads (compressMsg is undone there).
FrameStatus open_packet(const FramingOptions& opt, std::span<const uint8_t> datagram, Bytes& payload);

// Stream message out: compress (always, when opt.compress) -> encrypt. No label: the dialer
// writes stream_label_header() once before its message.
FrameStatus seal_stream(const FramingOptions& opt, uint8_t enc_version, std::span<const uint8_t> payload, Bytes& out);
// The label header a dialer writes first ("" without a label).
Bytes stream_label_header(const FramingOptions& opt);
// The start of an accepted stream: checks its label header, if any, against ours. ok with
// `consumed` = bytes of header (0 without one), or ok with `consumed` = 0 and `more` = true
// when the header is not complete yet.
FrameStatus check_stream_label(const FramingOptions& opt, std::span<const uint8_t> buffered, size_t& consumed,
                               bool& more);
// One whole message as HashicorpCodec::stream_message_size delimited it: decrypted if it
// is [encryptMsg]..., refused if plaintext while keys and verify_incoming say otherwise.
FrameStatus open_stream(const FramingOptions& opt, std::span<const uint8_t> message, Bytes& payload);

// The codec a runtime node uses: limits from its framing options and core config.
std::shared_ptr<const HashicorpCodec> make_runtime_codec(const FramingOptions& opt, size_t max_push_nodes,
                                                         size_t max_user_msg);

}  // namespace memberlist::wire::hashicorp
