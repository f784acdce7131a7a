#include "wire/hashicorp/codec.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <exception>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "wire/hashicorp/lzw.h"

namespace memberlist::wire::hashicorp {
namespace {

using core::Bytes;
using core::Errc;
using core::Status;

// ---------------------------------------------------------------------------------------
// Encoding: msgpack-c's packer writing into a Bytes.

struct Sink {
  Bytes& out;
  void write(const char* p, size_t n) { out.insert(out.end(), p, p + n); }
};

class Writer {
 public:
  explicit Writer(Bytes& out) : sink_{out}, pk_(sink_) {}

  void map(uint32_t n) { pk_.pack_map(n); }
  // Go's zero-value MsgpackHandle: strings and []byte both as old-spec raw.
  void raw(const void* p, size_t n) {
    pk_.pack_v4raw(static_cast<uint32_t>(n));
    pk_.pack_v4raw_body(static_cast<const char*>(p), static_cast<uint32_t>(n));
  }
  void key(std::string_view k) { raw(k.data(), k.size()); }
  void str(const std::string& s) { raw(s.data(), s.size()); }
  // A nil []byte is written as nil; we cannot tell nil from empty, and Go's nodes send nil.
  void bytes(std::span<const uint8_t> b) {
    if (b.empty())
      pk_.pack_nil();
    else
      raw(b.data(), b.size());
  }
  // go-msgpack 0.5.x writes a non-negative int like an unsigned one: smallest form.
  void uint(uint64_t v) { pk_.pack_uint64(v); }
  void boolean(bool b) { b ? pk_.pack_true() : pk_.pack_false(); }

 private:
  Sink sink_;
  msgpack::packer<Sink> pk_;
};

// An address as Go's net.IP bytes: 4 for IPv4 (16 if it came as 16: Address::wire16), 16
// otherwise, none when there is no IP (the port travels in its own field).
std::span<const uint8_t> ip_bytes(const core::Address& a) {
  if (a.ip == decltype(a.ip){}) return {};
  if (a.is_v4() && !a.wire16) return std::span<const uint8_t>(a.ip).subspan(12, 4);
  return a.ip;
}

void put_vsn(Writer& w, const core::Vsn& v) {
  const uint8_t b[6] = {v.pmin, v.pmax, v.pcur, v.dmin, v.dmax, v.dcur};
  w.raw(b, sizeof b);
}

// Fields in the order Go writes them: sorted by name. `omitempty` fields are left out when
// zero, as Go does.
struct Encoder {
  Bytes& out;
  bool stream;

  void type(MsgType t) { out.push_back(static_cast<uint8_t>(t)); }

  void operator()(const core::Ping& m) {
    type(MsgType::ping);
    Writer w(out);
    const auto src = ip_bytes(m.source);
    const bool has_port = m.source.port != 0, has_node = !m.source_node.empty();
    w.map(2 + !src.empty() + has_node + has_port);
    w.key("Node"), w.str(m.node);
    w.key("SeqNo"), w.uint(m.seq);
    if (!src.empty()) w.key("SourceAddr"), w.bytes(src);
    if (has_node) w.key("SourceNode"), w.str(m.source_node);
    if (has_port) w.key("SourcePort"), w.uint(m.source.port);
  }
  void operator()(const core::IndirectPing& m) {
    type(MsgType::indirect_ping);
    Writer w(out);
    const auto src = ip_bytes(m.source);
    const bool has_port = m.source.port != 0, has_node = !m.source_node.empty();
    w.map(5 + !src.empty() + has_node + has_port);
    w.key("Nack"), w.boolean(m.nack);
    w.key("Node"), w.str(m.node);
    w.key("Port"), w.uint(m.target.port);
    w.key("SeqNo"), w.uint(m.seq);
    if (!src.empty()) w.key("SourceAddr"), w.bytes(src);
    if (has_node) w.key("SourceNode"), w.str(m.source_node);
    if (has_port) w.key("SourcePort"), w.uint(m.source.port);
    w.key("Target"), w.bytes(ip_bytes(m.target));
  }
  void operator()(const core::Ack& m) {
    type(MsgType::ack);
    Writer w(out);
    w.map(2);
    w.key("Payload"), w.bytes(m.payload);
    w.key("SeqNo"), w.uint(m.seq);
  }
  void operator()(const core::Nack& m) {
    type(MsgType::nack);
    Writer w(out);
    w.map(1);
    w.key("SeqNo"), w.uint(m.seq);
  }
  void operator()(const core::Suspect& m) {
    type(MsgType::suspect);
    Writer w(out);
    w.map(3);
    w.key("From"), w.str(m.from);
    w.key("Incarnation"), w.uint(m.incarnation);
    w.key("Node"), w.str(m.node);
  }
  void operator()(const core::Alive& m) {
    type(MsgType::alive);
    Writer w(out);
    w.map(6);
    w.key("Addr"), w.bytes(ip_bytes(m.addr));
    w.key("Incarnation"), w.uint(m.incarnation);
    w.key("Meta"), w.bytes(m.meta);
    w.key("Node"), w.str(m.node);
    w.key("Port"), w.uint(m.addr.port);
    w.key("Vsn"), put_vsn(w, m.vsn);
  }
  void operator()(const core::Dead& m) {
    type(MsgType::dead);
    Writer w(out);
    w.map(3);
    w.key("From"), w.str(m.from);
    w.key("Incarnation"), w.uint(m.incarnation);
    w.key("Node"), w.str(m.node);
  }
  // As sendLocalState: header, every node state, then the user state bytes.
  void operator()(const core::PushPull& m) {
    type(MsgType::push_pull);
    Writer w(out);
    w.map(3);
    w.key("Join"), w.boolean(m.join);
    w.key("Nodes"), w.uint(m.nodes.size());
    w.key("UserStateLen"), w.uint(m.user_state.size());
    for (const auto& n : m.nodes) {
      w.map(7);
      w.key("Addr"), w.bytes(ip_bytes(n.addr));
      w.key("Incarnation"), w.uint(n.incarnation);
      w.key("Meta"), w.bytes(n.meta);
      w.key("Name"), w.str(n.name);
      w.key("Port"), w.uint(n.addr.port);
      w.key("State"), w.uint(static_cast<uint8_t>(n.state));
      w.key("Vsn"), put_vsn(w, n.vsn);
    }
    out.insert(out.end(), m.user_state.begin(), m.user_state.end());
  }
  void operator()(const core::UserMsg& m) { user(m.payload); }
  void operator()(const core::ErrResp& m) {
    type(MsgType::err);
    Writer w(out);
    w.map(1);
    w.key("Error"), w.str(m.error);
  }
  // No such message in this format: the payload goes out as a plain user message.
  void operator()(const core::UserBroadcast& m) { user(m.payload); }

  void user(const Bytes& payload) {
    type(MsgType::user);
    if (stream) {
      Writer w(out);
      w.map(1);
      w.key("UserMsgLen"), w.uint(payload.size());
    }
    out.insert(out.end(), payload.begin(), payload.end());
  }
};

Bytes encode_as(const core::Message& msg, bool stream) {
  Bytes out;
  out.reserve(64);
  std::visit(Encoder{out, stream}, msg);
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding: msgpack-c's unpacker with limits, then a lenient field-by-field read of the map
// (what go-msgpack's decoder accepts for these Go types).

Status bad(std::string what) { return Status::error(Errc::protocol, "hashicorp: " + std::move(what)); }

// str and bin objects point into the input instead of being copied: the input outlives them.
bool reference_all(msgpack::type::object_type, size_t, void*) { return true; }

class Fields {
 public:
  Fields(const msgpack::object& map, const char* what) : map_(map), what_(what) {}

  // Calls f(key, value) for every entry whose key is a string; a non-map is an error.
  template <class F>
  Status each(F&& f) const {
    if (map_.type != msgpack::type::MAP) return bad(std::string(what_) + ": not a msgpack map");
    for (uint32_t i = 0; i < map_.via.map.size; ++i) {
      const auto& kv = map_.via.map.ptr[i];
      std::string_view key;
      if (kv.key.type == msgpack::type::STR)
        key = {kv.key.via.str.ptr, kv.key.via.str.size};
      else if (kv.key.type == msgpack::type::BIN)
        key = {kv.key.via.bin.ptr, kv.key.via.bin.size};
      else
        return bad(std::string(what_) + ": map key is not a string");
      if (Status s = f(key, kv.val); !s.ok()) return s;
    }
    return Status::success();
  }

  // Unsigned integer fields: any integer format within range; nil is zero.
  template <class T>
  Status uint(std::string_view key, const msgpack::object& v, T& out) const {
    if (v.type == msgpack::type::NIL) {
      out = 0;
      return Status::success();
    }
    if (v.type != msgpack::type::POSITIVE_INTEGER || v.via.u64 > std::numeric_limits<T>::max())
      return field_error(key, "an unsigned integer in range");
    out = static_cast<T>(v.via.u64);
    return Status::success();
  }
  // Go `int` fields that hold a count: negative is refused as well.
  Status count(std::string_view key, const msgpack::object& v, size_t max, size_t& out) const {
    if (v.type == msgpack::type::NEGATIVE_INTEGER) return field_error(key, "a count, not negative");
    uint64_t n = 0;
    if (Status s = uint(key, v, n); !s.ok()) return s;
    if (n > max) return Status::error(Errc::too_large, "hashicorp: " + std::string(what_) + "." + std::string(key) +
                                                           " of " + std::to_string(n) + " is over the limit of " +
                                                           std::to_string(max));
    out = static_cast<size_t>(n);
    return Status::success();
  }
  Status boolean(std::string_view key, const msgpack::object& v, bool& out) const {
    if (v.type == msgpack::type::NIL) {
      out = false;
      return Status::success();
    }
    if (v.type != msgpack::type::BOOLEAN) return field_error(key, "a bool");
    out = v.via.boolean;
    return Status::success();
  }
  // string and []byte: raw/str or bin; nil is empty. Vsn also as an array of small uints
  // (how a non-Go encoder may write a []uint8).
  Status raw(std::string_view key, const msgpack::object& v, std::string_view& out) const {
    switch (v.type) {
      case msgpack::type::NIL: out = {}; return Status::success();
      case msgpack::type::STR: out = {v.via.str.ptr, v.via.str.size}; return Status::success();
      case msgpack::type::BIN: out = {v.via.bin.ptr, v.via.bin.size}; return Status::success();
      default: return field_error(key, "a string or bytes");
    }
  }
  Status string(std::string_view key, const msgpack::object& v, std::string& out) const {
    std::string_view s;
    if (Status st = raw(key, v, s); !st.ok()) return st;
    out.assign(s);
    return Status::success();
  }
  Status bytes(std::string_view key, const msgpack::object& v, Bytes& out) const {
    std::string_view s;
    if (Status st = raw(key, v, s); !st.ok()) return st;
    out.assign(s.begin(), s.end());
    return Status::success();
  }
  // net.IP bytes: 4 or 16 long, or none.
  Status ip(std::string_view key, const msgpack::object& v, core::Address& out) const {
    std::string_view s;
    if (Status st = raw(key, v, s); !st.ok()) return st;
    out.ip = {};
    out.wire16 = false;
    if (s.size() == 4) {
      out.ip[10] = out.ip[11] = 0xff;
      std::memcpy(out.ip.data() + 12, s.data(), 4);
    } else if (s.size() == 16) {
      std::memcpy(out.ip.data(), s.data(), 16);
      out.wire16 = out.is_v4();  // written back as 16 bytes
    } else if (!s.empty()) {
      return field_error(key, "an IP address of 4 or 16 bytes");
    }
    return Status::success();
  }
  // Copies up to six versions; missing ones stay 0 (which the core treats as unusable).
  Status vsn(std::string_view key, const msgpack::object& v, core::Vsn& out) const {
    uint8_t b[6] = {};
    if (v.type == msgpack::type::ARRAY) {
      for (uint32_t i = 0; i < v.via.array.size; ++i) {
        uint8_t x = 0;
        if (Status s = uint(key, v.via.array.ptr[i], x); !s.ok()) return s;
        if (i < 6) b[i] = x;
      }
    } else {
      std::string_view s;
      if (Status st = raw(key, v, s); !st.ok()) return st;
      if (!s.empty()) std::memcpy(b, s.data(), std::min<size_t>(s.size(), 6));  // nil: data() may be null
    }
    out = {b[0], b[1], b[2], b[3], b[4], b[5]};
    return Status::success();
  }

 private:
  Status field_error(std::string_view key, const char* expected) const {
    return bad(std::string(what_) + "." + std::string(key) + ": expected " + expected);
  }
  const msgpack::object& map_;
  const char* what_;
};

// Each message's map -> core::Message. Missing keys keep their zero values (as Go).
Status read(const Fields& f, core::Ping& m) {
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "SeqNo") return f.uint(k, v, m.seq);
    if (k == "Node") return f.string(k, v, m.node);
    if (k == "SourceAddr") return f.ip(k, v, m.source);
    if (k == "SourcePort") return f.uint(k, v, m.source.port);
    if (k == "SourceNode") return f.string(k, v, m.source_node);
    return Status::success();
  });
}
Status read(const Fields& f, core::IndirectPing& m) {
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "SeqNo") return f.uint(k, v, m.seq);
    if (k == "Target") return f.ip(k, v, m.target);
    if (k == "Port") return f.uint(k, v, m.target.port);
    if (k == "Node") return f.string(k, v, m.node);
    if (k == "Nack") return f.boolean(k, v, m.nack);
    if (k == "SourceAddr") return f.ip(k, v, m.source);
    if (k == "SourcePort") return f.uint(k, v, m.source.port);
    if (k == "SourceNode") return f.string(k, v, m.source_node);
    return Status::success();
  });
}
Status read(const Fields& f, core::Ack& m) {
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "SeqNo") return f.uint(k, v, m.seq);
    if (k == "Payload") return f.bytes(k, v, m.payload);
    return Status::success();
  });
}
Status read(const Fields& f, core::Nack& m) {
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "SeqNo") return f.uint(k, v, m.seq);
    return Status::success();
  });
}
template <class SuspectOrDead>
Status read_claim(const Fields& f, SuspectOrDead& m) {
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "Incarnation") return f.uint(k, v, m.incarnation);
    if (k == "Node") return f.string(k, v, m.node);
    if (k == "From") return f.string(k, v, m.from);
    return Status::success();
  });
}
Status read(const Fields& f, core::Suspect& m) { return read_claim(f, m); }
Status read(const Fields& f, core::Dead& m) { return read_claim(f, m); }
Status read(const Fields& f, core::Alive& m) {
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "Incarnation") return f.uint(k, v, m.incarnation);
    if (k == "Node") return f.string(k, v, m.node);
    if (k == "Addr") return f.ip(k, v, m.addr);
    if (k == "Port") return f.uint(k, v, m.addr.port);
    if (k == "Meta") return f.bytes(k, v, m.meta);
    if (k == "Vsn") return f.vsn(k, v, m.vsn);
    return Status::success();
  });
}
Status read(const Fields& f, core::PushNodeState& m) {
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "Name") return f.string(k, v, m.name);
    if (k == "Addr") return f.ip(k, v, m.addr);
    if (k == "Port") return f.uint(k, v, m.addr.port);
    if (k == "Meta") return f.bytes(k, v, m.meta);
    if (k == "Incarnation") return f.uint(k, v, m.incarnation);
    if (k == "Vsn") return f.vsn(k, v, m.vsn);
    if (k == "State") {
      uint64_t state = 0;
      if (Status s = f.uint(k, v, state); !s.ok()) return s;
      if (state > static_cast<uint64_t>(core::NodeState::Left))
        return bad("pushNodeState.State: unknown state " + std::to_string(state));
      m.state = static_cast<core::NodeState>(state);
    }
    return Status::success();
  });
}
Status read(const Fields& f, core::ErrResp& m) {
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "Error") return f.string(k, v, m.error);
    return Status::success();
  });
}

struct PushPullHeader {
  size_t nodes = 0, user_state_len = 0;
  bool join = false;
};

struct CompressHeader {
  uint8_t algo = 0;
  std::string_view buf;
};

// Reads msgpack objects one after another from one buffer (a message body or a stream).
class Reader {
 public:
  // Strings may claim up to `max_raw` bytes (0: the data at hand; a reader of a partly
  // received stream allows more). They are never copied, so a claim costs nothing.
  Reader(std::span<const uint8_t> data, const CodecLimits& l, size_t max_raw = 0)
      : data_(data), limit_(limits_for(l, max_raw != 0 ? max_raw : data.size())) {}

  // The next object; refused if malformed, truncated or over the limits. truncated() tells
  // a cut-short object from a malformed one.
  Status next(msgpack::object& obj, const char* what) {
    try {
      zone_.clear();
      obj = msgpack::unpack(zone_, reinterpret_cast<const char*>(data_.data()), data_.size(), off_, reference_all,
                            nullptr, limit_);
      return Status::success();
    } catch (const msgpack::insufficient_bytes& e) {
      truncated_ = true;
      return bad(std::string(what) + ": cut short (" + e.what() + ")");
    } catch (const msgpack::size_overflow& e) {
      return Status::error(Errc::too_large, std::string("hashicorp: ") + what + ": msgpack over the limits (" +
                                                e.what() + ")");
    } catch (const std::exception& e) {
      return bad(std::string(what) + ": bad msgpack (" + e.what() + ")");
    }
  }
  template <class M>
  Status message(M& m, const char* what) {
    msgpack::object obj;
    if (Status s = next(obj, what); !s.ok()) return s;
    return read(Fields(obj, what), m);
  }
  size_t remaining() const { return data_.size() - off_; }
  size_t offset() const { return off_; }
  std::span<const uint8_t> rest() const { return data_.subspan(off_); }
  bool truncated() const { return truncated_; }

 private:
  static msgpack::unpack_limit limits_for(const CodecLimits& l, size_t raw) {
    return {l.max_msgpack_entries, l.max_msgpack_entries, raw, raw, raw, l.max_msgpack_depth};
  }
  std::span<const uint8_t> data_;
  size_t off_ = 0;
  bool truncated_ = false;
  msgpack::unpack_limit limit_;
  msgpack::zone zone_;
};

// The headers that say how many bytes follow them on a stream.
Status read_push_pull_header(Reader& r, const CodecLimits& limits, PushPullHeader& h) {
  msgpack::object obj;
  if (Status s = r.next(obj, "pushPullHeader"); !s.ok()) return s;
  const Fields f(obj, "pushPullHeader");
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "Nodes") return f.count(k, v, limits.max_push_nodes, h.nodes);
    if (k == "UserStateLen") return f.count(k, v, limits.max_user_state, h.user_state_len);
    if (k == "Join") return f.boolean(k, v, h.join);
    return Status::success();
  });
}
Status read_user_msg_header(Reader& r, const CodecLimits& limits, size_t& len) {
  msgpack::object obj;
  if (Status s = r.next(obj, "userMsgHeader"); !s.ok()) return s;
  const Fields f(obj, "userMsgHeader");
  return f.each([&](std::string_view k, const msgpack::object& v) {
    if (k == "UserMsgLen") return f.count(k, v, limits.max_user_msg, len);
    return Status::success();
  });
}

class Decoder {
 public:
  Decoder(const CodecLimits& l, std::vector<core::Message>& out) : limits_(l), out_(out) {}

  // handleCommand: one message, a compound or a compressMsg. Parts that decode are kept
  // even when a sibling fails; the first error is returned.
  Status packet(std::span<const uint8_t> data, size_t depth) {
    if (data.empty()) return bad("missing message type byte");
    if (depth > limits_.max_nesting) return bad("compound/compress messages nested too deep");
    const auto type = static_cast<MsgType>(data[0]);
    const auto body = data.subspan(1);
    switch (type) {
      case MsgType::compound: return compound(body, depth);
      case MsgType::compress: {
        Bytes inflated;
        if (Status s = decompress(body, inflated, packet_budget_); !s.ok()) return s;
        return packet(inflated, depth + 1);
      }
      case MsgType::user: out_.push_back(core::UserMsg{Bytes(body.begin(), body.end())}); return Status::success();
      default: return single(type, body);
    }
  }

  // readStream + handleConn: at most one compressMsg around one message.
  Status stream(std::span<const uint8_t> data) {
    if (data.empty()) return bad("missing message type byte");
    if (static_cast<MsgType>(data[0]) == MsgType::compress) {
      size_t budget = limits_.max_inflated_stream;
      Bytes inflated;
      if (Status s = decompress(data.subspan(1), inflated, budget); !s.ok()) return s;
      if (inflated.empty()) return bad("compressed stream message is empty");
      if (static_cast<MsgType>(inflated[0]) == MsgType::compress) return bad("compressed twice on a stream");
      return stream(inflated);
    }
    const auto type = static_cast<MsgType>(data[0]);
    const auto body = data.subspan(1);
    switch (type) {
      case MsgType::ping:
      case MsgType::ack:
      case MsgType::push_pull:
      case MsgType::err: return single(type, body);
      case MsgType::user: return stream_user(body);
      default: return bad("message type " + std::to_string(data[0]) + " is not a stream message");
    }
  }

 private:
  template <class M>
  Status one(std::span<const uint8_t> body, const char* what) {
    Reader r(body, limits_);
    M m;
    if (Status s = r.message(m, what); !s.ok()) return s;
    if (r.remaining() != 0) return bad(std::string(what) + ": " + std::to_string(r.remaining()) + " bytes after the message");
    out_.push_back(std::move(m));
    return Status::success();
  }

  Status single(MsgType type, std::span<const uint8_t> body) {
    switch (type) {
      case MsgType::ping: return one<core::Ping>(body, "ping");
      case MsgType::indirect_ping: return one<core::IndirectPing>(body, "indirectPingReq");
      case MsgType::ack: return one<core::Ack>(body, "ackResp");
      case MsgType::nack: return one<core::Nack>(body, "nackResp");
      case MsgType::suspect: return one<core::Suspect>(body, "suspect");
      case MsgType::alive: return one<core::Alive>(body, "alive");
      case MsgType::dead: return one<core::Dead>(body, "dead");
      case MsgType::err: return one<core::ErrResp>(body, "errResp");
      case MsgType::push_pull: return push_pull(body);
      default: return bad("msg type (" + std::to_string(static_cast<unsigned>(type)) + ") not supported");
    }
  }

  // decodeCompoundMessage: the parts that fit are decoded; truncation is an error.
  Status compound(std::span<const uint8_t> body, size_t depth) {
    if (body.empty()) return bad("missing compound length byte");
    const size_t n = body[0];
    if (body.size() < 1 + 2 * n) return bad("compound: truncated len slice");
    std::span<const uint8_t> rest = body.subspan(1 + 2 * n);
    Status first;
    for (size_t i = 0; i < n; ++i) {
      const size_t len = size_t{body[1 + 2 * i]} << 8 | body[2 + 2 * i];
      if (len > rest.size()) {
        if (first.ok()) first = bad("compound: " + std::to_string(n - i) + " truncated messages");
        break;
      }
      Status s = packet(rest.first(len), depth + 1);
      if (first.ok() && !s.ok()) first = s;
      rest = rest.subspan(len);
    }
    return first;
  }

  Status decompress(std::span<const uint8_t> body, Bytes& inflated, size_t& budget) {
    Reader r(body, limits_);
    msgpack::object obj;
    if (Status s = r.next(obj, "compress"); !s.ok()) return s;
    if (r.remaining() != 0) return bad("compress: bytes after the message");
    const Fields f(obj, "compress");
    CompressHeader c;
    Status s = f.each([&](std::string_view k, const msgpack::object& v) {
      if (k == "Algo") return f.uint(k, v, c.algo);
      if (k == "Buf") return f.raw(k, v, c.buf);
      return Status::success();
    });
    if (!s.ok()) return s;
    if (c.algo != 0) return bad("cannot decompress unknown algorithm " + std::to_string(c.algo));
    const auto* p = reinterpret_cast<const uint8_t*>(c.buf.data());
    if (Status z = lzw_decompress({p, c.buf.size()}, budget, inflated); !z.ok()) return z;
    budget -= inflated.size();
    return Status::success();
  }

  // sendLocalState's layout: header, Nodes node states, UserStateLen raw bytes, nothing more.
  Status push_pull(std::span<const uint8_t> body) {
    Reader r(body, limits_);
    PushPullHeader h;
    if (Status s = read_push_pull_header(r, limits_, h); !s.ok()) return s;
    core::PushPull pp;
    pp.join = h.join;
    // Each node state takes at least one byte, so the input bounds the reservation.
    pp.nodes.reserve(std::min(h.nodes, r.remaining()));
    for (size_t i = 0; i < h.nodes; ++i) {
      core::PushNodeState n;
      if (Status st = r.message(n, "pushNodeState"); !st.ok()) return st;
      pp.nodes.push_back(std::move(n));
    }
    if (r.remaining() != h.user_state_len)
      return bad("push/pull: user state is " + std::to_string(r.remaining()) + " bytes, the header says " +
                 std::to_string(h.user_state_len));
    const auto user = r.rest();
    pp.user_state.assign(user.begin(), user.end());
    out_.push_back(std::move(pp));
    return Status::success();
  }

  // sendUserMsg: userMsgHeader, then exactly UserMsgLen bytes.
  Status stream_user(std::span<const uint8_t> body) {
    Reader r(body, limits_);
    size_t len = 0;
    if (Status s = read_user_msg_header(r, limits_, len); !s.ok()) return s;
    if (r.remaining() != len)
      return bad("user message: " + std::to_string(r.remaining()) + " bytes, the header says " + std::to_string(len));
    const auto payload = r.rest();
    out_.push_back(core::UserMsg{Bytes(payload.begin(), payload.end())});
    return Status::success();
  }

  const CodecLimits& limits_;
  std::vector<core::Message>& out_;
  size_t packet_budget_ = limits_.max_inflated_packet;  // shared by every compressMsg in a datagram
};

// How long the stream message at the start of `buf` is: the type byte, then msgpack objects
// and the raw bytes their headers announce. need = the fewest bytes that could complete it.
Status probe_stream(std::span<const uint8_t> buf, const CodecLimits& limits, size_t& size, size_t& need) {
  size = 0;
  need = 1;
  if (buf.empty()) return Status::success();
  const auto type = static_cast<MsgType>(buf[0]);
  auto done = [&](size_t total) {
    if (total > limits.max_stream_message)
      return Status::error(Errc::too_large, "hashicorp: stream message of " + std::to_string(total) +
                                                " bytes is over the limit of " + std::to_string(limits.max_stream_message));
    if (buf.size() >= total)
      size = total;
    else
      need = total;
    return Status::success();
  };
  if (type == MsgType::encrypt) {
    if (buf.size() < 5) {
      need = 5;
      return Status::success();
    }
    const size_t len = size_t{buf[1]} << 24 | size_t{buf[2]} << 16 | size_t{buf[3]} << 8 | buf[4];
    if (len > limits.max_encrypted_stream)
      return Status::error(Errc::too_large, "hashicorp: remote node state is larger than limit (" + std::to_string(len) + ")");
    return done(5 + len);
  }
  Reader r(buf.subspan(1), limits, limits.max_stream_message);
  // A cut-short object means "read more"; anything else wrong is final.
  // msgpack-c checks a string's claimed length only once it is all there, so a claim is
  // bounded by refusing to buffer more than a whole message may be.
  auto more = [&](const Status& s) {
    if (!r.truncated()) return s;
    need = buf.size() + 1;
    return done(need);
  };
  msgpack::object obj;
  switch (type) {
    case MsgType::ping:
    case MsgType::ack:
    case MsgType::err:
    case MsgType::compress:
      if (Status s = r.next(obj, "stream message"); !s.ok()) return more(s);
      return done(1 + r.offset());
    case MsgType::push_pull: {
      PushPullHeader h;
      if (Status s = read_push_pull_header(r, limits, h); !s.ok()) return more(s);
      for (size_t i = 0; i < h.nodes; ++i) {
        if (Status s = r.next(obj, "pushNodeState"); !s.ok()) return more(s);
      }
      return done(1 + r.offset() + h.user_state_len);
    }
    case MsgType::user: {
      size_t len = 0;
      if (Status s = read_user_msg_header(r, limits, len); !s.ok()) return more(s);
      return done(1 + r.offset() + len);
    }
    default: return bad("message type " + std::to_string(buf[0]) + " is not a stream message");
  }
}

}  // namespace

Status HashicorpCodec::stream_message_size(std::span<const uint8_t> buffered, size_t& size, size_t& need) const {
  try {
    return probe_stream(buffered, limits_, size, need);
  } catch (const std::exception& e) {
    return Status::error(Errc::too_large, std::string("hashicorp: out of memory reading a stream (") + e.what() + ")");
  }
}

Bytes HashicorpCodec::encode(const core::Message& msg) const { return encode_as(msg, false); }
Bytes HashicorpCodec::encode_stream(const core::Message& msg) const { return encode_as(msg, true); }

Bytes HashicorpCodec::pack(const std::vector<Bytes>& parts) const {
  if (parts.size() == 1) return parts[0];
  size_t total = 2;
  for (const auto& p : parts) total += 2 + p.size();
  Bytes out;
  out.reserve(total);
  out.push_back(static_cast<uint8_t>(MsgType::compound));
  out.push_back(static_cast<uint8_t>(parts.size()));
  for (const auto& p : parts) {
    out.push_back(static_cast<uint8_t>(p.size() >> 8));
    out.push_back(static_cast<uint8_t>(p.size()));
  }
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Status HashicorpCodec::decode(std::span<const uint8_t> data, std::vector<core::Message>& out) const {
  try {
    return Decoder(limits_, out).packet(data, 0);
  } catch (const std::exception& e) {  // std::bad_alloc: never let it out
    return Status::error(Errc::too_large, std::string("hashicorp: out of memory decoding (") + e.what() + ")");
  }
}

Status HashicorpCodec::decode_stream(std::span<const uint8_t> data, std::vector<core::Message>& out) const {
  try {
    return Decoder(limits_, out).stream(data);
  } catch (const std::exception& e) {
    return Status::error(Errc::too_large, std::string("hashicorp: out of memory decoding (") + e.what() + ")");
  }
}

std::shared_ptr<const HashicorpCodec> make_hashicorp_codec(CodecLimits limits) {
  return std::make_shared<const HashicorpCodec>(limits);
}

}  // namespace memberlist::wire::hashicorp
