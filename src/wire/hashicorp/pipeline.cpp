#include "wire/hashicorp/pipeline.h"

#include "wire/hashicorp/framing.h"

namespace memberlist::wire::hashicorp {
namespace {

FrameStatus fail(FrameError kind, std::string what) {
  FrameStatus s;
  s.code = kind == FrameError::label_mismatch || kind == FrameError::not_encrypted ||
                   kind == FrameError::decrypt_failed
               ? core::Errc::rejected
           : kind == FrameError::too_large   ? core::Errc::too_large
           : kind == FrameError::bad_options ? core::Errc::invalid
           : kind == FrameError::crypto_error ? core::Errc::io
                                              : core::Errc::protocol;
  s.message = std::move(what);
  s.kind = kind;
  return s;
}

bool has_keys(const FramingOptions& opt) { return opt.keyring && !opt.keyring->empty(); }

// A label from the network, fit for a log line: printable ASCII, the rest as '?'.
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}

// The label a received frame is read with: its own header's, checked against ours.
FrameStatus check_label(const FramingOptions& opt, const std::string& got, const char* what) {
  if (opt.skip_inbound_label_check) {
    if (!got.empty()) return fail(FrameError::label_mismatch, std::string("unexpected label header on a ") + what);
    return {};
  }
  if (got != opt.label)
    return fail(FrameError::label_mismatch,
                std::string(what) + " has label \"" + printable(got) + "\", expected \"" + printable(opt.label) + "\"");
  return {};
}

}  // namespace

size_t packet_overhead(const FramingOptions& opt, bool assume_encryption) {
  size_t n = label_overhead(opt.label) + kCrcOverhead;
  if (assume_encryption || (opt.verify_outgoing && has_keys(opt))) n += encrypt_overhead(0);
  return n;
}

FrameStatus seal_packet(const FramingOptions& opt, uint8_t enc_version, bool crc, std::span<const uint8_t> payload,
                        Bytes& datagram) {
  Bytes msg = opt.compress ? compress_if_smaller(payload) : Bytes(payload.begin(), payload.end());
  if (crc) msg = add_crc(msg);
  auto keys = opt.verify_outgoing && opt.keyring ? opt.keyring->snapshot() : nullptr;
  if (keys && !keys->empty()) {
    Bytes enc;
    auto aad = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(opt.label.data()), opt.label.size());
    if (auto st = encrypt_payload(enc_version, keys->front(), msg, aad, enc); !st.ok())
      return fail(st.code == core::Errc::io ? FrameError::crypto_error : FrameError::bad_options, st.message);
    msg = std::move(enc);
  }
  if (auto st = add_label_header(opt.label, msg, datagram); !st.ok()) return fail(FrameError::bad_options, st.message);
  return {};
}

FrameStatus open_packet(const FramingOptions& opt, std::span<const uint8_t> datagram, Bytes& payload) {
  std::string label;
  std::span<const uint8_t> rest;
  if (auto st = remove_label_header(datagram, label, rest); !st.ok()) return fail(FrameError::malformed, st.message);
  if (auto st = check_label(opt, label, "datagram"); !st.ok()) return st;
  if (rest.empty()) return fail(FrameError::malformed, "empty datagram");
  Bytes plain;
  auto keys = opt.keyring ? opt.keyring->snapshot() : nullptr;
  if (keys && !keys->empty()) {
    const std::string& l = opt.skip_inbound_label_check ? opt.label : label;
    auto aad = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(l.data()), l.size());
    auto st = decrypt_payload(*keys, rest, aad, plain);
    if (st.ok()) {
      rest = plain;
    } else if (opt.verify_incoming) {
      // As Go's ingestPacket: without verify_incoming a packet that does not decrypt is
      // read as plaintext.
      return fail(st.code == core::Errc::rejected ? FrameError::decrypt_failed : FrameError::malformed,
                  "decrypt datagram: " + st.message);
    }
  }
  std::span<const uint8_t> msg;
  if (auto st = check_crc(rest, msg); !st.ok()) return fail(FrameError::bad_crc, st.message);
  payload.assign(msg.begin(), msg.end());
  return {};
}

FrameStatus seal_stream(const FramingOptions& opt, uint8_t enc_version, std::span<const uint8_t> payload, Bytes& out) {
  Bytes msg = opt.compress ? compress_payload(payload) : Bytes(payload.begin(), payload.end());
  auto keys = opt.verify_outgoing && opt.keyring ? opt.keyring->snapshot() : nullptr;
  if (keys && !keys->empty()) {
    if (encrypted_length(enc_version, msg.size()) > opt.max_stream_message)
      return fail(FrameError::too_large, "stream message of " + std::to_string(msg.size()) + " bytes is over the limit");
    out.clear();
    if (auto st = encrypt_stream(enc_version, keys->front(), msg, opt.label, out); !st.ok())
      return fail(st.code == core::Errc::io ? FrameError::crypto_error : FrameError::bad_options, st.message);
    return {};
  }
  out = std::move(msg);
  return {};
}

Bytes stream_label_header(const FramingOptions& opt) {
  Bytes out;
  (void)add_label_header(opt.label, {}, out);  // validate() keeps the label short enough
  return out;
}

FrameStatus check_stream_label(const FramingOptions& opt, std::span<const uint8_t> buffered, size_t& consumed,
                               bool& more) {
  consumed = 0;
  more = false;
  if (buffered.empty()) {
    more = true;
    return {};
  }
  if (buffered[0] != kHasLabelMsg) return check_label(opt, "", "stream");
  if (buffered.size() < 2 || buffered.size() < 2 + size_t{buffered[1]}) {
    more = buffered.size() < 2 || buffered[1] != 0;
    if (more) return {};
  }
  std::string label;
  std::span<const uint8_t> rest;
  if (auto st = remove_label_header(buffered, label, rest); !st.ok()) return fail(FrameError::malformed, st.message);
  if (auto st = check_label(opt, label, "stream"); !st.ok()) return st;
  consumed = buffered.size() - rest.size();
  return {};
}

FrameStatus open_stream(const FramingOptions& opt, std::span<const uint8_t> message, Bytes& payload) {
  if (message.empty()) return fail(FrameError::malformed, "empty stream message");
  auto keys = opt.keyring ? opt.keyring->snapshot() : nullptr;
  const bool encrypted = message[0] == kEncryptMsg;
  if (encrypted) {
    if (!keys || keys->empty())
      return fail(FrameError::decrypt_failed, "remote state is encrypted and encryption is not configured");
    auto st = decrypt_stream(*keys, message, opt.label, payload, opt.max_stream_message);
    if (!st.ok())
      return fail(st.code == core::Errc::rejected ? FrameError::decrypt_failed
                  : st.code == core::Errc::too_large ? FrameError::too_large
                                                     : FrameError::malformed,
                  "decrypt stream: " + st.message);
    return {};
  }
  if (keys && !keys->empty() && opt.verify_incoming)
    return fail(FrameError::not_encrypted, "encryption is configured but the remote state is not encrypted");
  payload.assign(message.begin(), message.end());
  return {};
}

std::shared_ptr<const HashicorpCodec> make_runtime_codec(const FramingOptions& opt, size_t max_push_nodes,
                                                         size_t max_user_msg) {
  CodecLimits l;
  l.max_push_nodes = max_push_nodes;
  l.max_user_msg = max_user_msg;
  l.max_user_state = opt.max_stream_message;
  l.max_inflated_stream = opt.max_decompressed;
  l.max_encrypted_stream = opt.max_stream_message;
  l.max_stream_message = opt.max_stream_message;
  return make_hashicorp_codec(l);
}

}  // namespace memberlist::wire::hashicorp
