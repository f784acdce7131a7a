// The native codec: core::Message <-> [type byte][FlatBuffers table] (schema/memberlist.fbs).
// Decoding trusts nothing: every table goes through the FlatBuffers verifier before any
// field is read, and the checks the verifier cannot do (type known, enum in range, name
// sizes, one form per address, no aliasing blow-up) are made while converting.
//
// A compound packet is [MessageType_Compound][part count] then, per part, [length][part],
// where each part is a complete message (type byte + table); count and lengths are unsigned
// LEB128 varints. Parts are verified one by one, so one bad part does not spoil the others.
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "wire/memberlist_generated.h"
#include "wire/wire.h"

namespace memberlist::wire {
namespace {

namespace fb = memberlist::wire::fb;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

// Alignment a table needs before the verifier may look at it (one more than the schema
// needs, so a future 8-byte field does not silently break decoding).
constexpr size_t kBufferAlign = 8;
// Node names travel through the C API as 1..255 byte strings.
constexpr size_t kMaxNameSize = 255;
// As the reference (maxPushStateNodes).
constexpr size_t kMaxPushNodes = size_t{1} << 20;
// Broadcast repair entries of one push/pull, each list (core bounds them further with
// Config::max_repair_broadcasts).
constexpr size_t kMaxRepairEntries = 4096;
// Verifier limits: our deepest path is PushPull > nodes > PushNodeState > meta.
constexpr flatbuffers::uoffset_t kMaxDepth = 16;
constexpr flatbuffers::uoffset_t kMaxTables = kMaxPushNodes + 2 * kMaxRepairEntries + 64;
// What pack() adds: the type byte and a one-byte count (up to kPackMaxParts parts), and a
// length of at most 3 varint bytes per part (parts under 2 MiB, which covers every part
// that fits a datagram). Checked by tests/wire.
constexpr size_t kPackHeaderOverhead = 2;
constexpr size_t kPackPartOverhead = 3;
constexpr size_t kPackMaxParts = 127;
// The most parts a received compound may hold: the reference's limit (its count is one byte).
// Every part can make us reply, so a compound of many small parts is refused whole.
constexpr uint32_t kMaxCompoundParts = 255;
// The Vsn a message leaves out (see the schema): what a node sends with default settings.
const fb::Vsn kDefaultVsn(1, 5, 2, 0, 0, 0);

// ---------------------------------------------------------------------------------------
// Encoding

// One address as the schema carries it: 4 bytes for IPv4, 16 otherwise, nothing if empty.
struct FbAddress {
  fb::Ip4 v4;
  fb::Ip6 v6;
  bool is4 = false, is6 = false;

  explicit FbAddress(const core::Address& a) {
    if (a.empty()) return;
    if (a.is_v4()) {
      v4 = fb::Ip4(flatbuffers::span<const uint8_t, 4>(a.ip.data() + 12, 4), a.port);
      is4 = true;
    } else {
      v6 = fb::Ip6(flatbuffers::span<const uint8_t, 16>(a.ip.data(), 16), a.port);
      is6 = true;
    }
  }
  const fb::Ip4* ip4() const { return is4 ? &v4 : nullptr; }
  const fb::Ip6* ip6() const { return is6 ? &v6 : nullptr; }
};

struct FbVsn {
  fb::Vsn v;
  explicit FbVsn(const core::Vsn& x) : v(x.pmin, x.pmax, x.pcur, x.dmin, x.dmax, x.dcur) {}
  const fb::Vsn* get() const { return std::memcmp(&v, &kDefaultVsn, sizeof v) == 0 ? nullptr : &v; }
};

struct Root {
  fb::MessageType type;
  Offset<void> table;
};

class Encoder {
 public:
  explicit Encoder(FlatBufferBuilder& builder) : b(builder) {}

  FlatBufferBuilder& b;
  // The builder writes back to front, so the first object created ends the buffer, followed
  // by the zero bytes that aligned it. They carry nothing (the verifier does not need a
  // buffer to end aligned), so encode() leaves them out.
  size_t tail_padding = 0;

  Offset<flatbuffers::String> string(const std::string& s) {
    auto o = b.CreateString(s);
    created(sizeof(flatbuffers::uoffset_t) + s.size() + 1);
    return o;
  }
  Offset<flatbuffers::Vector<uint8_t>> bytes(const core::Bytes& v) {
    auto o = b.CreateVector(v);
    created(sizeof(flatbuffers::uoffset_t) + v.size());
    return o;
  }
  // Optional strings and byte vectors are left out when empty (absent decodes as empty).
  Offset<flatbuffers::String> opt_string(const std::string& s) { return s.empty() ? 0 : string(s); }
  Offset<flatbuffers::Vector<uint8_t>> opt_bytes(const core::Bytes& v) { return v.empty() ? 0 : bytes(v); }
  void created(size_t object_size) {
    if (first_) tail_padding = b.GetSize() - object_size;
    first_ = false;
  }

  Root operator()(const core::Ping& m) {
    auto node = opt_string(m.node);
    auto source_node = opt_string(m.source_node);
    const FbAddress source(m.source);
    return {fb::MessageType_Ping,
            fb::CreatePing(b, m.seq, node, source.ip4(), source_node, source.ip6()).Union()};
  }
  Root operator()(const core::IndirectPing& m) {
    auto node = opt_string(m.node);
    auto source_node = opt_string(m.source_node);
    const FbAddress target(m.target), source(m.source);
    return {fb::MessageType_IndirectPing,
            fb::CreateIndirectPing(b, m.seq, target.ip4(), node, source.ip4(), source_node, m.nack, target.ip6(),
                                   source.ip6())
                .Union()};
  }
  Root operator()(const core::Ack& m) {
    return {fb::MessageType_Ack, fb::CreateAck(b, m.seq, opt_bytes(m.payload)).Union()};
  }
  Root operator()(const core::Nack& m) { return {fb::MessageType_Nack, fb::CreateNack(b, m.seq).Union()}; }
  Root operator()(const core::Suspect& m) {
    auto node = string(m.node);
    auto from = opt_string(m.from);
    return {fb::MessageType_Suspect, fb::CreateSuspect(b, m.incarnation, node, from).Union()};
  }
  Root operator()(const core::Alive& m) {
    auto node = string(m.node);
    auto meta = opt_bytes(m.meta);
    const FbAddress addr(m.addr);
    const FbVsn vsn(m.vsn);
    return {fb::MessageType_Alive,
            fb::CreateAlive(b, m.incarnation, node, addr.ip4(), meta, addr.ip6(), vsn.get()).Union()};
  }
  Root operator()(const core::Dead& m) {
    auto node = string(m.node);
    // A graceful leave (from == node) points both fields at one string.
    auto from = m.from == m.node ? node : opt_string(m.from);
    return {fb::MessageType_Dead, fb::CreateDead(b, m.incarnation, node, from).Union()};
  }
  Root operator()(const core::PushPull& m) {
    std::vector<Offset<fb::PushNodeState>> nodes;
    nodes.reserve(m.nodes.size());
    for (const auto& n : m.nodes) {
      auto name = string(n.name);
      auto meta = opt_bytes(n.meta);
      const FbAddress addr(n.addr);
      const FbVsn vsn(n.vsn);
      nodes.push_back(fb::CreatePushNodeState(b, name, n.incarnation, addr.ip4(), static_cast<fb::NodeState>(n.state),
                                              meta, addr.ip6(), vsn.get()));
    }
    auto nodes_vec = nodes.empty() ? 0 : b.CreateVector(nodes);
    auto user_state = opt_bytes(m.user_state);
    std::vector<Offset<fb::BroadcastId>> digest;
    for (const auto& id : m.broadcast_digest) digest.push_back(fb::CreateBroadcastId(b, string(id.origin), id.epoch, id.seq));
    std::vector<Offset<fb::UserBroadcast>> repair;
    for (const auto& u : m.broadcast_repair) repair.push_back(user_broadcast(u));
    return {fb::MessageType_PushPull,
            fb::CreatePushPull(b, nodes_vec, m.join, user_state, m.repair_window_ms,
                               digest.empty() ? 0 : b.CreateVector(digest), repair.empty() ? 0 : b.CreateVector(repair))
                .Union()};
  }
  Root operator()(const core::UserMsg& m) {
    return {fb::MessageType_UserMsg, fb::CreateUserMsg(b, opt_bytes(m.payload)).Union()};
  }
  Root operator()(const core::ErrResp& m) {
    return {fb::MessageType_ErrResp, fb::CreateErrResp(b, opt_string(m.error)).Union()};
  }
  Root operator()(const core::UserBroadcast& m) { return {fb::MessageType_UserBroadcast, user_broadcast(m).Union()}; }
  Offset<fb::UserBroadcast> user_broadcast(const core::UserBroadcast& m) {
    auto origin = string(m.origin);
    auto name = opt_string(m.name);
    auto payload = opt_bytes(m.payload);
    return fb::CreateUserBroadcast(b, origin, m.epoch, m.seq, name, payload, m.repaired, m.age_ms);
  }

 private:
  bool first_ = true;
};

size_t size_hint(const core::Message& msg) {
  if (const auto* pp = std::get_if<core::PushPull>(&msg)) {
    size_t repair = 0;
    for (const auto& u : pp->broadcast_repair) repair += 64 + u.payload.size();
    return 128 + pp->user_state.size() + pp->nodes.size() * 64 + pp->broadcast_digest.size() * 32 + repair;
  }
  return 256;
}

// Unsigned LEB128: 7 bits per byte, low bits first, high bit set on all but the last byte.
void put_varint(Bytes& out, size_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}
size_t varint_size(size_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// ---------------------------------------------------------------------------------------
// Decoding

Status malformed(std::string what) { return Status::error(core::Errc::protocol, std::move(what)); }

// Reads a varint of at most 5 bytes (a 32-bit value); false if truncated or longer.
bool get_varint(std::span<const uint8_t>& in, uint32_t& v) {
  uint64_t r = 0;
  for (size_t i = 0; i < 5 && i < in.size(); ++i) {
    r |= uint64_t{in[i] & 0x7fu} << (7 * i);
    if ((in[i] & 0x80) == 0) {
      if (r > UINT32_MAX) return false;
      v = static_cast<uint32_t>(r);
      in = in.subspan(i + 1);
      return true;
    }
  }
  return false;
}

// Bounds the bytes a decode may produce to the bytes it was given: FlatBuffers offsets may
// point many times at the same data, which would otherwise let a small input decode into a
// huge one. A real encoding shares nothing but a leave's name (copied without a charge),
// and each charge below is no more than what the charged item takes on the wire.
struct Budget {
  size_t left;
  bool take(size_t n) {
    if (n > left) return false;
    left -= n;
    return true;
  }
};
// Charged per decoded PushNodeState: less than its smallest encoding (slot + table + name).
constexpr size_t kNodeCharge = 16;

// The table of a message, copied to kBufferAlign-aligned memory when it is not there
// already: the verifier checks alignment relative to the buffer start, reads need it
// absolute, and the type byte in front puts a table at an odd address. Datagram-sized
// tables are copied to the stack, larger ones (push/pull state) to the heap.
class AlignedBody {
 public:
  explicit AlignedBody(std::span<const uint8_t> body) : data_(body.data()), size_(body.size()) {
    if (reinterpret_cast<uintptr_t>(data_) % kBufferAlign == 0) return;
    uint8_t* copy = small_;
    if (size_ > sizeof small_) {
      static_assert(alignof(uint64_t) >= kBufferAlign);
      large_.reset(new uint64_t[(size_ + 7) / 8]);
      copy = reinterpret_cast<uint8_t*>(large_.get());
    }
    if (size_ != 0) std::memcpy(copy, data_, size_);
    data_ = copy;
  }
  AlignedBody(const AlignedBody&) = delete;
  AlignedBody& operator=(const AlignedBody&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  alignas(kBufferAlign) uint8_t small_[1536];
  std::unique_ptr<uint64_t[]> large_;
};

// The root table of type T in `buf`, or null if it fails verification.
template <typename T>
const T* verified_root(const AlignedBody& buf) {
  flatbuffers::Verifier::Options opts;
  opts.max_depth = kMaxDepth;
  opts.max_tables = kMaxTables;
  opts.check_alignment = true;
  opts.check_nested_flatbuffers = false;  // the schema has none
  flatbuffers::Verifier verifier(buf.data(), buf.size(), opts);
  if (!verifier.VerifyBuffer<T>(nullptr)) return nullptr;
  return flatbuffers::GetRoot<T>(buf.data());
}

class Decoder {
 public:
  explicit Decoder(Budget& budget) : budget_(budget) {}

  // One message: type byte + table. A compound is not accepted here.
  Status message(std::span<const uint8_t> msg, std::vector<core::Message>& out) {
    if (msg.empty()) return malformed("empty message");
    const AlignedBody body(msg.subspan(1));
    type_ = static_cast<fb::MessageType>(msg[0]);
    switch (type_) {
      case fb::MessageType_Ping: return run<fb::Ping>(body, out, &Decoder::ping);
      case fb::MessageType_IndirectPing: return run<fb::IndirectPing>(body, out, &Decoder::indirect_ping);
      case fb::MessageType_Ack: return run<fb::Ack>(body, out, &Decoder::ack);
      case fb::MessageType_Nack: return run<fb::Nack>(body, out, &Decoder::nack);
      case fb::MessageType_Suspect: return run<fb::Suspect>(body, out, &Decoder::suspect);
      case fb::MessageType_Alive: return run<fb::Alive>(body, out, &Decoder::alive);
      case fb::MessageType_Dead: return run<fb::Dead>(body, out, &Decoder::dead);
      case fb::MessageType_PushPull: return run<fb::PushPull>(body, out, &Decoder::push_pull);
      case fb::MessageType_UserMsg: return run<fb::UserMsg>(body, out, &Decoder::user_msg);
      case fb::MessageType_ErrResp: return run<fb::ErrResp>(body, out, &Decoder::err_resp);
      case fb::MessageType_UserBroadcast: return run<fb::UserBroadcast>(body, out, &Decoder::user_broadcast);
      case fb::MessageType_Compound: return malformed("compound message inside a compound");
    }
    return malformed("unknown message type " + std::to_string(msg[0]));
  }

 private:
  template <typename T>
  Status run(const AlignedBody& body, std::vector<core::Message>& out,
             Status (Decoder::*convert)(const T&, std::vector<core::Message>&)) {
    const T* table = verified_root<T>(body);
    if (!table) {
      return malformed(std::string(fb::EnumNameMessageType(type_)) +
                       " message failed verification (not a native memberlist message, or corrupt)");
    }
    return (this->*convert)(*table, out);
  }

  Status ping(const fb::Ping& m, std::vector<core::Message>& out) {
    core::Ping p;
    p.seq = m.seq();
    if (!name(m.node(), p.node, false) || !name(m.source_node(), p.source_node, false)) return bad_name("ping");
    if (!address(m.source(), m.source6(), p.source)) return bad_address("ping");
    out.emplace_back(std::move(p));
    return {};
  }
  Status indirect_ping(const fb::IndirectPing& m, std::vector<core::Message>& out) {
    core::IndirectPing p;
    p.seq = m.seq();
    p.nack = m.nack();
    if (!address(m.target(), m.target6(), p.target) || !address(m.source(), m.source6(), p.source)) {
      return bad_address("indirect ping");
    }
    if (!name(m.node(), p.node, false) || !name(m.source_node(), p.source_node, false)) return bad_name("indirect ping");
    out.emplace_back(std::move(p));
    return {};
  }
  Status ack(const fb::Ack& m, std::vector<core::Message>& out) {
    core::Ack a;
    a.seq = m.seq();
    if (!bytes(m.payload(), a.payload)) return aliased();
    out.emplace_back(std::move(a));
    return {};
  }
  Status nack(const fb::Nack& m, std::vector<core::Message>& out) {
    out.emplace_back(core::Nack{m.seq()});
    return {};
  }
  Status suspect(const fb::Suspect& m, std::vector<core::Message>& out) {
    core::Suspect s;
    s.incarnation = m.incarnation();
    if (!name(m.node(), s.node, true) || !name(m.from(), s.from, false)) return bad_name("suspect");
    out.emplace_back(std::move(s));
    return {};
  }
  Status alive(const fb::Alive& m, std::vector<core::Message>& out) {
    core::Alive a;
    a.incarnation = m.incarnation();
    if (!name(m.node(), a.node, true)) return bad_name("alive");
    if (!address(m.addr(), m.addr6(), a.addr)) return bad_address("alive");
    if (!bytes(m.meta(), a.meta)) return aliased();
    a.vsn = vsn(m.vsn());
    out.emplace_back(std::move(a));
    return {};
  }
  Status dead(const fb::Dead& m, std::vector<core::Message>& out) {
    core::Dead d;
    d.incarnation = m.incarnation();
    if (!name(m.node(), d.node, true)) return bad_name("dead");
    if (m.from() == m.node()) {
      d.from = d.node;  // one string on the wire, charged once
    } else if (!name(m.from(), d.from, false)) {
      return bad_name("dead");
    }
    out.emplace_back(std::move(d));
    return {};
  }
  Status push_pull(const fb::PushPull& m, std::vector<core::Message>& out) {
    core::PushPull p;
    p.join = m.join();
    if (const auto* nodes = m.nodes()) {
      if (nodes->size() > kMaxPushNodes) {
        return Status::error(core::Errc::too_large, "push/pull with " + std::to_string(nodes->size()) +
                                                        " nodes (limit " + std::to_string(kMaxPushNodes) + ")");
      }
      if (!budget_.take(size_t{nodes->size()} * kNodeCharge)) return aliased();
      p.nodes.reserve(nodes->size());
      for (const fb::PushNodeState* n : *nodes) {
        core::PushNodeState s;
        if (!name(n->name(), s.name, true)) return bad_name("push/pull node");
        if (!address(n->addr(), n->addr6(), s.addr)) return bad_address("push/pull node");
        if (!bytes(n->meta(), s.meta)) return aliased();
        s.incarnation = n->incarnation();
        const auto state = static_cast<uint8_t>(n->state());
        if (state > fb::NodeState_MAX) return malformed("push/pull: unknown node state " + std::to_string(state));
        s.state = static_cast<core::NodeState>(state);
        s.vsn = vsn(n->vsn());
        p.nodes.push_back(std::move(s));
      }
    }
    if (!bytes(m.user_state(), p.user_state)) return aliased();
    p.repair_window_ms = m.repair_window_ms();
    if (const auto* digest = m.broadcast_digest()) {
      if (digest->size() > kMaxRepairEntries) return too_many_repairs("digest", digest->size());
      if (!budget_.take(size_t{digest->size()} * kNodeCharge)) return aliased();
      for (const fb::BroadcastId* id : *digest) {
        core::BroadcastId b;
        if (!name(id->origin(), b.origin, true)) return bad_name("push/pull digest");
        b.epoch = id->epoch();
        b.seq = id->seq();
        p.broadcast_digest.push_back(std::move(b));
      }
    }
    if (const auto* repair = m.broadcast_repair()) {
      if (repair->size() > kMaxRepairEntries) return too_many_repairs("repair", repair->size());
      if (!budget_.take(size_t{repair->size()} * kNodeCharge)) return aliased();
      std::vector<core::Message> one;
      for (const fb::UserBroadcast* u : *repair) {
        one.clear();
        if (Status s = user_broadcast(*u, one); !s.ok()) return s;
        p.broadcast_repair.push_back(std::move(std::get<core::UserBroadcast>(one[0])));
      }
    }
    out.emplace_back(std::move(p));
    return {};
  }
  static Status too_many_repairs(const char* what, size_t n) {
    return Status::error(core::Errc::too_large, std::string("push/pull with a broadcast ") + what + " of " +
                                                    std::to_string(n) + " entries (limit " +
                                                    std::to_string(kMaxRepairEntries) + ")");
  }
  Status user_msg(const fb::UserMsg& m, std::vector<core::Message>& out) {
    core::UserMsg u;
    if (!bytes(m.payload(), u.payload)) return aliased();
    out.emplace_back(std::move(u));
    return {};
  }
  Status user_broadcast(const fb::UserBroadcast& m, std::vector<core::Message>& out) {
    core::UserBroadcast u;
    // The broadcast name is an application string with the same limits as a node name.
    if (!name(m.origin(), u.origin, true) || !name(m.name(), u.name, false)) return bad_name("user broadcast");
    u.epoch = m.epoch();
    u.seq = m.seq();
    u.repaired = m.repaired();
    u.age_ms = m.age_ms();
    if (!bytes(m.payload(), u.payload)) return aliased();
    out.emplace_back(std::move(u));
    return {};
  }
  Status err_resp(const fb::ErrResp& m, std::vector<core::Message>& out) {
    core::ErrResp e;
    if (const auto* s = m.error()) {
      if (!budget_.take(s->size())) return aliased();
      e.error.assign(s->c_str(), s->size());
    }
    out.emplace_back(std::move(e));
    return {};
  }

  // A node name: at most kMaxNameSize bytes, no NUL (it becomes a C string in the API).
  bool name(const flatbuffers::String* s, std::string& into, bool non_empty) {
    if (!s) return !non_empty;
    const std::string_view v = s->string_view();
    if (v.size() > kMaxNameSize || (non_empty && v.empty()) || v.find('\0') != v.npos) return false;
    if (!budget_.take(v.size())) return false;
    into.assign(v);
    return true;
  }
  bool bytes(const flatbuffers::Vector<uint8_t>* v, core::Bytes& into) {
    if (!v) return true;
    if (!budget_.take(v->size())) return false;
    into.assign(v->begin(), v->end());
    return true;
  }
  // At most one of the two forms; neither is the empty address. An IPv4 address becomes
  // v4-mapped, as core::Address holds it.
  static bool address(const fb::Ip4* a4, const fb::Ip6* a6, core::Address& into) {
    if (a4 && a6) return false;
    if (a4) {
      const auto& ip = *a4->ip();
      into = core::Address::v4(ip[0], ip[1], ip[2], ip[3], a4->port());
    } else if (a6) {
      std::memcpy(into.ip.data(), a6->ip()->Data(), into.ip.size());
      into.port = a6->port();
    }
    return true;
  }
  static core::Vsn vsn(const fb::Vsn* v) {
    if (!v) v = &kDefaultVsn;
    return core::Vsn{v->pmin(), v->pmax(), v->pcur(), v->dmin(), v->dmax(), v->dcur()};
  }
  static Status bad_name(const char* what) {
    return malformed(std::string(what) + ": node name missing, empty, longer than " +
                     std::to_string(kMaxNameSize) + " bytes or containing NUL");
  }
  static Status bad_address(const char* what) {
    return malformed(std::string(what) + ": address given both as IPv4 and as IPv6");
  }
  static Status aliased() { return malformed("message decodes to more data than it holds (aliased offsets)"); }

  Budget& budget_;
  fb::MessageType type_ = fb::MessageType_MIN;  // of the message being decoded
};

Status decode_one(std::span<const uint8_t> msg, std::vector<core::Message>& out) {
  Budget budget{msg.size()};
  return Decoder(budget).message(msg, out);
}

// `rest`: what follows the compound's type byte.
Status decode_compound(std::span<const uint8_t> rest, std::vector<core::Message>& out) {
  uint32_t count = 0;
  if (!get_varint(rest, count)) return malformed("compound without a part count");
  if (count > kMaxCompoundParts) {
    return malformed("compound of " + std::to_string(count) + " parts (limit " + std::to_string(kMaxCompoundParts) + ")");
  }
  size_t bad = 0;
  Status first_error;
  for (size_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    if (!get_varint(rest, len) || len > rest.size()) {
      // The layout is broken from here on; count the rest as bad.
      if (first_error.ok()) first_error = malformed("compound part " + std::to_string(i) + " truncated");
      bad += count - i;
      rest = {};
      break;
    }
    const Status s = decode_one(rest.first(len), out);
    if (!s.ok()) {
      ++bad;
      if (first_error.ok()) first_error = Status::error(s.code, "compound part " + std::to_string(i) + ": " + s.message);
    }
    rest = rest.subspan(len);
  }
  if (bad == 0 && rest.empty()) return {};
  if (bad == 0) return malformed(std::to_string(rest.size()) + " bytes after the last compound part");
  first_error.message = std::to_string(bad) + " of " + std::to_string(count) +
                        " compound parts malformed; first: " + first_error.message;
  return first_error;
}

class FlatBuffersCodec final : public core::Codec {
 public:
  Bytes encode(const core::Message& msg) const override {
    FlatBufferBuilder b(size_hint(msg));
    Encoder encoder(b);
    const Root root = std::visit(encoder, msg);
    b.Finish(root.table);
    const size_t size = b.GetSize() - encoder.tail_padding;
    Bytes out;
    out.reserve(1 + size);
    out.push_back(static_cast<uint8_t>(root.type));
    out.insert(out.end(), b.GetBufferPointer(), b.GetBufferPointer() + size);
    return out;
  }

  // [MessageType_Compound][n] then [length varint][part] per part: at most
  // kPackHeaderOverhead + sum(parts) + kPackPartOverhead * n for parts under 2 MiB.
  Bytes pack(const std::vector<Bytes>& parts) const override {
    if (parts.size() == 1) return parts.front();
    size_t size = 1 + varint_size(parts.size());
    for (const Bytes& p : parts) size += varint_size(p.size()) + p.size();
    Bytes out;
    out.reserve(size);
    out.push_back(static_cast<uint8_t>(fb::MessageType_Compound));
    put_varint(out, parts.size());
    for (const Bytes& p : parts) {
      put_varint(out, p.size());
      out.insert(out.end(), p.begin(), p.end());
    }
    return out;
  }
  size_t pack_header_overhead() const override { return kPackHeaderOverhead; }
  size_t pack_part_overhead() const override { return kPackPartOverhead; }
  size_t pack_max_parts() const override { return kPackMaxParts; }

  Status decode(std::span<const uint8_t> data, std::vector<core::Message>& out) const override {
    if (data.empty()) return malformed("empty message");
    if (data.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) {
      return Status::error(core::Errc::too_large, "message of " + std::to_string(data.size()) + " bytes");
    }
    if (data[0] == fb::MessageType_Compound) return decode_compound(data.subspan(1), out);
    return decode_one(data, out);
  }
};

}  // namespace

std::shared_ptr<const core::Codec> make_flatbuffers_codec() { return std::make_shared<const FlatBuffersCodec>(); }

}  // namespace memberlist::wire
