// The wire layer: the native FlatBuffers codec, and framing of datagrams and stream
// messages. Framing is independent of the codec: the runtime calls seal/open around the
// codec's bytes, and FramingOptions says which layers (label, CRC32, compression, AES-GCM
// encryption) a node writes and what it accepts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/codec.h"
#include "wire/keyring.h"

namespace memberlist::wire {

using core::Bytes;
using core::Status;

// Which protocol a node speaks on the wire (runtime::Options::wire_format).
//   native: our FlatBuffers codec and framing (wire.h);
//   hashicorp: hashicorp/memberlist 0.2.2's msgpack messages and layers (src/wire/hashicorp,
//     pipeline.h), so that the node joins clusters of Go memberlist nodes.
enum class WireFormat : uint8_t { native = 0, hashicorp = 1 };

// The native codec: one FlatBuffers table per message (schema/memberlist.fbs), every input
// checked by the FlatBuffers verifier before any field is read.
std::shared_ptr<const core::Codec> make_flatbuffers_codec();

// A label is at most this long (its length is one byte on the wire).
inline constexpr size_t kMaxLabelSize = 255;
// The most a compressed datagram may inflate to: senders compress a datagram they sized to
// udp_buffer_size (at most 65,507 bytes), so anything larger is forged.
inline constexpr size_t kMaxInflatedPacket = 64 * 1024;

// What a node writes around each message and what it accepts. Defaults: no label, no CRC,
// no compression, no keyring -- plain frames, as before these layers existed.
// The options are read concurrently by the sending and receiving threads; only the keyring
// may change while they are in use (it has its own lock).
struct FramingOptions {
  // Bounds on sizes read from the network (reference values).
  size_t max_stream_message = 20u << 20;  // largest stream message body accepted (bytes, as sent)
  size_t max_decompressed = 40u << 20;    // largest size a compressed stream message may inflate to
                                          // (datagrams: also at most kMaxInflatedPacket)

  // Cluster label: written on every datagram and stream message, and bound into the
  // encryption as associated data. At most kMaxLabelSize bytes; "" = no label.
  std::string label;
  // Inbound frames must carry no label (something in front of us already checked it);
  // `label` is assumed for them (so it still has to match the sender's for decryption).
  bool skip_inbound_label_check = false;

  // CRC32 (IEEE) over the datagram's content, checked on receipt. Datagrams only: stream
  // messages ride on TCP's own checksums and on GCM when encrypted.
  bool crc = false;
  // zlib compression of each message, kept only when it makes the message smaller.
  bool compress = false;

  // AES-GCM: when the keyring holds keys, messages are encrypted with its primary key and
  // decrypted with whichever installed key fits. Null or empty keyring = no encryption.
  std::shared_ptr<Keyring> keyring;
  // false: with keys installed, plaintext frames are still accepted (the reference's
  // GossipVerifyIncoming; used while a cluster switches to encryption).
  bool verify_incoming = true;
  // false: with keys installed, frames are still sent in plaintext (GossipVerifyOutgoing).
  bool verify_outgoing = true;
};

// Checks the options themselves (label length). seal_* refuse invalid options too.
Status validate(const FramingOptions& opt);

// Why a frame could not be opened (or sealed): one value per counter the runtime keeps.
enum class FrameError : uint8_t {
  none = 0,
  malformed,          // Errc::protocol: bad magic, truncated, unknown or misplaced layer
  label_mismatch,     // Errc::rejected: another cluster's label, or a label where none may be
  not_encrypted,      // Errc::rejected: plaintext while keys are installed and verify_incoming
  decrypt_failed,     // Errc::rejected: no installed key opens it (wrong key, no key, tampered)
  bad_crc,            // Errc::protocol: CRC32 mismatch
  decompress_failed,  // Errc::protocol: corrupt zlib data, empty or mis-sized result
  too_large,          // Errc::too_large: a bound in FramingOptions was exceeded
  bad_options,        // Errc::invalid: (sealing) invalid FramingOptions
  crypto_error,       // Errc::io: (sealing) OpenSSL failed
};
const char* to_string(FrameError e);  // "label_mismatch", ...

// A Status that also says which FrameError it is (kind == none iff ok()).
struct FrameStatus : Status {
  FrameError kind = FrameError::none;
};

// Bytes the framing adds to a datagram's payload with these options: what the core's
// udp_buffer_size budget must leave free. Compression never adds bytes (it is used only
// when smaller). With assume_encryption, counts encryption even if no key is installed yet
// (for a budget fixed before keys are installed).
size_t packet_overhead(const FramingOptions& opt, bool assume_encryption = false);
inline constexpr size_t kFrameHeaderOverhead = 2;         // magic + plain-layer tag
inline constexpr size_t kCrcOverhead = 5;                 // tag + CRC32
inline constexpr size_t kEncryptionOverhead = 1 + 12 + 16;  // tag + nonce + GCM tag
inline size_t label_overhead(const std::string& label) { return label.empty() ? 0 : 2 + label.size(); }

// True when frames sent with these options are encrypted right now.
bool encrypts(const FramingOptions& opt);

// Datagrams: what the runtime writes to / reads from UDP around the codec's bytes.
FrameStatus seal_packet(const FramingOptions& opt, std::span<const uint8_t> payload, Bytes& datagram);
FrameStatus open_packet(const FramingOptions& opt, std::span<const uint8_t> datagram, Bytes& payload);
// Older form: an empty result if sealing failed (invalid options, OpenSSL failure).
Bytes seal_packet(const FramingOptions& opt, std::span<const uint8_t> payload);

// Stream messages: a 4-byte big-endian length header, then the sealed message (the body).
inline constexpr size_t kStreamHeaderSize = 4;
// `message` gets header + body. Errc::too_large if the body would exceed max_stream_message.
FrameStatus seal_stream_message(const FramingOptions& opt, std::span<const uint8_t> payload, Bytes& message);
// Older form: an empty result if sealing failed.
Bytes seal_stream_message(const FramingOptions& opt, std::span<const uint8_t> payload);
// Reads the header; an error if the length is over the limit or too short for a frame.
FrameStatus parse_stream_header(const FramingOptions& opt, std::span<const uint8_t, kStreamHeaderSize> header,
                                size_t& body_length);
FrameStatus open_stream_message(const FramingOptions& opt, std::span<const uint8_t> body, Bytes& payload);

}  // namespace memberlist::wire
