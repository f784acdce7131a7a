// hashicorp/memberlist's own wire format as a core::Codec: a message-type byte, then the
// message struct as a msgpack map keyed by Go field name, written exactly as memberlist
// 0.2.2 writes it (hashicorp/go-msgpack 0.5.x, zero-value MsgpackHandle): keys sorted by
// name, strings and byte slices in the old raw format (fixraw / raw16 / raw32, never str8
// or bin), nil for an empty byte slice, the smallest unsigned form for every integer that
// is not negative. Decoding goes through msgpack-c with bounded unpacking and accepts every
// form Go's decoder accepts for these fields (any integer width, str or bin, nil), skips
// unknown keys, and refuses anything else with Errc::protocol.
//
// Datagrams and stream messages differ in one place: a user message is [8][raw bytes] in a
// datagram but [8][msgpack userMsgHeader][raw bytes] on a stream. encode()/decode() are the
// datagram forms (they also take push/pull and err, which only travel on streams and are
// unambiguous); encode_stream()/decode_stream() are the stream forms.
//
// Not carried by this format (see docs/hashicorp-wire.md): core::UserBroadcast is written as
// a plain user message with its payload only (origin, epoch, seq and name are dropped), and
// decodes as core::UserMsg. IPv4 addresses are written as 4 bytes, except those that came
// as 16 bytes (a Go node's autodetected address): core::Address::wire16 keeps that form.
#pragma once

#include <memory>
#include <span>

#include "core/codec.h"

namespace memberlist::wire::hashicorp {

// Message type byte (memberlist net.go; "only append to this list").
enum class MsgType : uint8_t {
  ping = 0,
  indirect_ping = 1,
  ack = 2,
  suspect = 3,
  alive = 4,
  dead = 5,
  push_pull = 6,
  compound = 7,
  user = 8,
  compress = 9,
  encrypt = 10,
  nack = 11,
  has_crc = 12,
  err = 13,
  has_label = 244,
};

// Bounds on what a received message may claim (reference values; the runtime may lower them).
struct CodecLimits {
  size_t max_push_nodes = size_t{1} << 20;     // pushPullHeader.Nodes (maxPushStateNodes)
  size_t max_user_state = 20u << 20;           // pushPullHeader.UserStateLen
  size_t max_user_msg = 20u << 20;             // userMsgHeader.UserMsgLen
  size_t max_inflated_packet = 64u * 1024;     // all compressMsg in one datagram, inflated
  size_t max_inflated_stream = 40u << 20;      // a compressed stream message, inflated
  // msgpack-c unpack_limit: nesting depth and entries per map or array. Our structs are
  // flat maps of scalars; the room above that is for keys a newer Go version may add.
  size_t max_msgpack_depth = 8;
  size_t max_msgpack_entries = 1024;
  // Compound and compress messages inside each other (Go recurses without a limit).
  size_t max_nesting = 4;
  // A whole stream message as sent: encrypted ([10][L]..., maxPushStateBytes) and not.
  size_t max_encrypted_stream = 20u << 20;
  size_t max_stream_message = 64u << 20;
};

class HashicorpCodec final : public core::Codec {
 public:
  explicit HashicorpCodec(CodecLimits limits = {}) : limits_(limits) {}

  core::Bytes encode(const core::Message& msg) const override;
  // As encode(), but a user message gets the stream form (with its userMsgHeader).
  core::Bytes encode_stream(const core::Message& msg) const override;

  // [7][count u8][count x u16 BE length][parts...] (makeCompoundMessage). Like Go's, the
  // count and lengths do not fit more than pack_max_parts() parts of up to 65,535 bytes each;
  // the core splits larger sets, and a datagram cannot hold a larger part.
  core::Bytes pack(const std::vector<core::Bytes>& parts) const override;
  size_t pack_header_overhead() const override { return 2; }  // compoundHeaderOverhead
  size_t pack_part_overhead() const override { return 2; }    // compoundOverhead
  size_t pack_max_parts() const override { return 255; }      // the count is one byte

  // A datagram's content (after label, decryption and CRC): one message, a compound or a
  // compressMsg, nested as Go's handleCommand allows.
  core::Status decode(std::span<const uint8_t> data, std::vector<core::Message>& out) const override;
  // One whole stream message (after decryption): ping, ack, push/pull, user message (with
  // its header) or err, possibly wrapped once in a compressMsg, as Go's readStream reads it.
  core::Status decode_stream(std::span<const uint8_t> data, std::vector<core::Message>& out) const override;

  // For a reader of a TCP stream, where an unencrypted message has no outer length: how
  // many bytes the message at the start of `buffered` (label header already removed) takes.
  // ok and size > 0: the first `size` bytes are the whole message (for decode_stream, or
  // for decrypt_stream when it starts with encryptMsg). ok and size == 0: read more, until
  // at least `need` bytes are buffered (re-reading grows `need` as headers arrive; read in
  // growing chunks, as each call parses from the start). An error: the stream is broken or
  // over the limits (Errc::too_large).
  core::Status stream_message_size(std::span<const uint8_t> buffered, size_t& size, size_t& need) const;

  const CodecLimits& limits() const { return limits_; }

 private:
  CodecLimits limits_;
};

std::shared_ptr<const HashicorpCodec> make_hashicorp_codec(CodecLimits limits = {});

}  // namespace memberlist::wire::hashicorp
