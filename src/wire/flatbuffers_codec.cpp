// The native codec: core::Message <-> one FlatBuffers Envelope (schema/memberlist.fbs).
// Decoding trusts nothing: every buffer goes through the FlatBuffers verifier before any
// field is read, and the checks the verifier cannot do (union type known, enum in range,
// name sizes, no aliasing blow-up) are made while converting.
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

// Compound parts start at this alignment inside Compound.data; see the schema.
constexpr size_t kPartAlign = 4;
// Alignment the whole input needs before the verifier may look at it (one more than the
// schema needs, so a future 8-byte field does not silently break decoding).
constexpr size_t kBufferAlign = 8;
// Node names travel through the C API as 1..255 byte strings.
constexpr size_t kMaxNameSize = 255;
// As the reference (maxPushStateNodes).
constexpr size_t kMaxPushNodes = size_t{1} << 20;
// Verifier limits: our deepest path is Envelope > PushPull > nodes > PushNodeState > meta.
constexpr flatbuffers::uoffset_t kMaxDepth = 16;
constexpr flatbuffers::uoffset_t kMaxTables = kMaxPushNodes + 64;
// What pack() adds; derived in pack() below and checked by tests/wire.
constexpr size_t kPackHeaderOverhead = 56;
constexpr size_t kPackPartOverhead = 7;
constexpr size_t kPackMaxParts = 255;

constexpr size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// ---------------------------------------------------------------------------------------
// Encoding

fb::Address to_fb(const core::Address& a) {
  return fb::Address(flatbuffers::span<const uint8_t, 16>(a.ip.data(), 16), a.port);
}

fb::Vsn to_fb(const core::Vsn& v) { return fb::Vsn(v.pmin, v.pmax, v.pcur, v.dmin, v.dmax, v.dcur); }

// Optional strings and byte vectors are left out when empty (absent decodes as empty).
Offset<flatbuffers::String> opt_string(FlatBufferBuilder& b, const std::string& s) {
  return s.empty() ? 0 : b.CreateString(s);
}
Offset<flatbuffers::Vector<uint8_t>> opt_bytes(FlatBufferBuilder& b, const core::Bytes& v) {
  return v.empty() ? 0 : b.CreateVector(v);
}

struct Encoder {
  FlatBufferBuilder& b;

  Offset<void> operator()(const core::Ping& m) const {
    auto node = opt_string(b, m.node);
    auto source_node = opt_string(b, m.source_node);
    const fb::Address source = to_fb(m.source);
    return fb::CreatePing(b, m.seq, node, m.source.empty() ? nullptr : &source, source_node).Union();
  }
  Offset<void> operator()(const core::IndirectPing& m) const {
    auto node = opt_string(b, m.node);
    auto source_node = opt_string(b, m.source_node);
    const fb::Address target = to_fb(m.target);
    const fb::Address source = to_fb(m.source);
    return fb::CreateIndirectPing(b, m.seq, &target, node, m.nack,
                                  m.source.empty() ? nullptr : &source, source_node)
        .Union();
  }
  Offset<void> operator()(const core::Ack& m) const {
    return fb::CreateAck(b, m.seq, opt_bytes(b, m.payload)).Union();
  }
  Offset<void> operator()(const core::Nack& m) const { return fb::CreateNack(b, m.seq).Union(); }
  Offset<void> operator()(const core::Suspect& m) const {
    auto node = b.CreateString(m.node);
    auto from = opt_string(b, m.from);
    return fb::CreateSuspect(b, m.incarnation, node, from).Union();
  }
  Offset<void> operator()(const core::Alive& m) const {
    auto node = b.CreateString(m.node);
    auto meta = opt_bytes(b, m.meta);
    const fb::Address addr = to_fb(m.addr);
    const fb::Vsn vsn = to_fb(m.vsn);
    return fb::CreateAlive(b, m.incarnation, node, &addr, meta, &vsn).Union();
  }
  Offset<void> operator()(const core::Dead& m) const {
    auto node = b.CreateString(m.node);
    auto from = opt_string(b, m.from);
    return fb::CreateDead(b, m.incarnation, node, from).Union();
  }
  Offset<void> operator()(const core::PushPull& m) const {
    std::vector<Offset<fb::PushNodeState>> nodes;
    nodes.reserve(m.nodes.size());
    for (const auto& n : m.nodes) {
      auto name = b.CreateString(n.name);
      auto meta = opt_bytes(b, n.meta);
      const fb::Address addr = to_fb(n.addr);
      const fb::Vsn vsn = to_fb(n.vsn);
      nodes.push_back(fb::CreatePushNodeState(b, name, &addr, meta, n.incarnation,
                                              static_cast<fb::NodeState>(n.state), &vsn));
    }
    auto nodes_vec = nodes.empty() ? 0 : b.CreateVector(nodes);
    return fb::CreatePushPull(b, m.join, nodes_vec, opt_bytes(b, m.user_state)).Union();
  }
  Offset<void> operator()(const core::UserMsg& m) const {
    return fb::CreateUserMsg(b, opt_bytes(b, m.payload)).Union();
  }
  Offset<void> operator()(const core::ErrResp& m) const {
    return fb::CreateErrResp(b, opt_string(b, m.error)).Union();
  }
  Offset<void> operator()(const core::UserBroadcast& m) const {
    auto origin = b.CreateString(m.origin);
    auto name = opt_string(b, m.name);
    auto payload = opt_bytes(b, m.payload);
    return fb::CreateUserBroadcast(b, origin, m.epoch, m.seq, name, payload).Union();
  }
};

// The union tag of each core::Message alternative, in variant order.
constexpr fb::Body kBodyOf[] = {fb::Body_Ping,    fb::Body_IndirectPing, fb::Body_Ack,
                                fb::Body_Nack,    fb::Body_Suspect,      fb::Body_Alive,
                                fb::Body_Dead,    fb::Body_PushPull,     fb::Body_UserMsg,
                                fb::Body_ErrResp, fb::Body_UserBroadcast};
static_assert(std::size(kBodyOf) == std::variant_size_v<core::Message>);

size_t size_hint(const core::Message& msg) {
  if (const auto* pp = std::get_if<core::PushPull>(&msg)) {
    return 128 + pp->user_state.size() + pp->nodes.size() * 96;
  }
  return 256;
}

// ---------------------------------------------------------------------------------------
// Decoding

Status malformed(std::string what) { return Status::error(core::Errc::protocol, std::move(what)); }

// Bounds the bytes a decode may produce to the bytes it was given: FlatBuffers offsets may
// point many times at the same data, which would otherwise let a small input decode into a
// huge one. A real encoding never shares data (the encoder does not share strings), and
// each charge below is no more than what the charged item takes on the wire.
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

class Decoder {
 public:
  explicit Decoder(Budget& budget) : budget_(budget) {}

  Status message(const fb::Envelope& env, std::vector<core::Message>& out) {
    switch (env.body_type()) {
      case fb::Body_Ping: return ping(*env.body_as_Ping(), out);
      case fb::Body_IndirectPing: return indirect_ping(*env.body_as_IndirectPing(), out);
      case fb::Body_Ack: return ack(*env.body_as_Ack(), out);
      case fb::Body_Nack: out.emplace_back(core::Nack{env.body_as_Nack()->seq()}); return {};
      case fb::Body_Suspect: return suspect(*env.body_as_Suspect(), out);
      case fb::Body_Alive: return alive(*env.body_as_Alive(), out);
      case fb::Body_Dead: return dead(*env.body_as_Dead(), out);
      case fb::Body_PushPull: return push_pull(*env.body_as_PushPull(), out);
      case fb::Body_UserMsg: return user_msg(*env.body_as_UserMsg(), out);
      case fb::Body_ErrResp: return err_resp(*env.body_as_ErrResp(), out);
      case fb::Body_UserBroadcast: return user_broadcast(*env.body_as_UserBroadcast(), out);
      case fb::Body_Compound: return malformed("compound message inside a compound");
      case fb::Body_NONE: break;
    }
    return malformed("unknown message type " + std::to_string(static_cast<int>(env.body_type())));
  }

 private:
  Status ping(const fb::Ping& m, std::vector<core::Message>& out) {
    core::Ping p;
    p.seq = m.seq();
    if (!name(m.node(), p.node, false) || !name(m.source_node(), p.source_node, false)) return bad_name("ping");
    p.source = address(m.source());
    out.emplace_back(std::move(p));
    return {};
  }
  Status indirect_ping(const fb::IndirectPing& m, std::vector<core::Message>& out) {
    core::IndirectPing p;
    p.seq = m.seq();
    p.target = address(m.target());
    p.nack = m.nack();
    p.source = address(m.source());
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
    a.addr = address(m.addr());
    if (!bytes(m.meta(), a.meta)) return aliased();
    a.vsn = vsn(m.vsn());
    out.emplace_back(std::move(a));
    return {};
  }
  Status dead(const fb::Dead& m, std::vector<core::Message>& out) {
    core::Dead d;
    d.incarnation = m.incarnation();
    if (!name(m.node(), d.node, true) || !name(m.from(), d.from, false)) return bad_name("dead");
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
        s.addr = address(n->addr());
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
    out.emplace_back(std::move(p));
    return {};
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
  static core::Address address(const fb::Address* a) {
    core::Address r;
    if (a) {
      std::memcpy(r.ip.data(), a->ip()->Data(), r.ip.size());
      r.port = a->port();
    }
    return r;
  }
  static core::Vsn vsn(const fb::Vsn* v) {
    if (!v) return {};
    return core::Vsn{v->pmin(), v->pmax(), v->pcur(), v->dmin(), v->dmax(), v->dcur()};
  }
  static Status bad_name(const char* what) {
    return malformed(std::string(what) + ": node name missing, empty, longer than " +
                     std::to_string(kMaxNameSize) + " bytes or containing NUL");
  }
  static Status aliased() { return malformed("message decodes to more data than it holds (aliased offsets)"); }

  Budget& budget_;
};

// Verifies one Envelope buffer; `buf` must be kBufferAlign-aligned or inside such a buffer
// at a kPartAlign offset.
const fb::Envelope* verified_envelope(const uint8_t* buf, size_t size) {
  flatbuffers::Verifier::Options opts;
  opts.max_depth = kMaxDepth;
  opts.max_tables = kMaxTables;
  opts.check_alignment = true;
  opts.check_nested_flatbuffers = false;  // the schema has none; compound parts are checked one by one
  flatbuffers::Verifier verifier(buf, size, opts);
  if (!fb::VerifyEnvelopeBuffer(verifier)) return nullptr;
  return fb::GetEnvelope(buf);
}

Status decode_compound(const fb::Compound& c, std::vector<core::Message>& out) {
  const auto& ends = *c.ends();
  const auto& data = *c.data();
  size_t bad = 0;
  Status first_error;
  size_t start = 0;
  for (flatbuffers::uoffset_t i = 0; i < ends.size(); ++i) {
    const size_t end = ends[i];
    if (end < start || end > data.size()) {
      // The layout is broken from here on; count the rest as bad.
      if (first_error.ok()) first_error = malformed("compound part " + std::to_string(i) + " out of range");
      bad += ends.size() - i;
      break;
    }
    const fb::Envelope* env = verified_envelope(data.data() + start, end - start);
    Budget budget{end - start};
    Status s = env ? Decoder(budget).message(*env, out) : malformed("message failed verification");
    if (!s.ok()) {
      ++bad;
      if (first_error.ok()) first_error = Status::error(s.code, "compound part " + std::to_string(i) + ": " + s.message);
    }
    start = round_up(end, kPartAlign);
  }
  if (bad == 0) return {};
  first_error.message = std::to_string(bad) + " of " + std::to_string(ends.size()) +
                        " compound parts malformed; first: " + first_error.message;
  return first_error;
}

class FlatBuffersCodec final : public core::Codec {
 public:
  Bytes encode(const core::Message& msg) const override {
    FlatBufferBuilder b(size_hint(msg));
    const Offset<void> body = std::visit(Encoder{b}, msg);
    b.Finish(fb::CreateEnvelope(b, kBodyOf[msg.index()], body), fb::EnvelopeIdentifier());
    return Bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  }

  // Size of the result, in the order the builder writes it (back to front):
  //   data vector: D bytes padded to 4 + length 4, where D = the parts, each but the
  //     last padded to kPartAlign, so padded D <= sum(parts) + 3 n;
  //   ends vector: 4 n + length 4;
  //   Compound table 12 + vtable 8; Envelope table 12 + vtable 8; identifier 4 + root 4.
  // Total <= sum(parts) + 56 + 7 n, reached when every part size is 1 mod 4.
  Bytes pack(const std::vector<Bytes>& parts) const override {
    if (parts.size() == 1) return parts.front();
    size_t data_size = 0;
    std::vector<uint32_t> ends;
    ends.reserve(parts.size());
    for (const Bytes& p : parts) {
      data_size = round_up(data_size, kPartAlign) + p.size();
      ends.push_back(static_cast<uint32_t>(data_size));
    }
    FlatBufferBuilder b(data_size + kPackHeaderOverhead + kPackPartOverhead * parts.size());
    uint8_t* dst = nullptr;
    auto data = b.CreateUninitializedVector(data_size, &dst);
    size_t start = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      std::memset(dst + start, 0, ends[i] - parts[i].size() - start);  // padding before the part
      if (!parts[i].empty()) std::memcpy(dst + ends[i] - parts[i].size(), parts[i].data(), parts[i].size());
      start = ends[i];
    }
    auto ends_vec = b.CreateVector(ends);
    auto compound = fb::CreateCompound(b, ends_vec, data);
    b.Finish(fb::CreateEnvelope(b, fb::Body_Compound, compound.Union()), fb::EnvelopeIdentifier());
    return Bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  }
  size_t pack_header_overhead() const override { return kPackHeaderOverhead; }
  size_t pack_part_overhead() const override { return kPackPartOverhead; }
  size_t pack_max_parts() const override { return kPackMaxParts; }

  Status decode(std::span<const uint8_t> data, std::vector<core::Message>& out) const override {
    if (data.empty()) return malformed("empty message");
    if (data.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) {
      return Status::error(core::Errc::too_large, "message of " + std::to_string(data.size()) + " bytes");
    }
    // The verifier checks alignment relative to the buffer start; reads need it absolute.
    std::unique_ptr<uint64_t[]> aligned;
    const uint8_t* buf = data.data();
    if (reinterpret_cast<uintptr_t>(buf) % kBufferAlign != 0) {
      static_assert(alignof(uint64_t) >= kBufferAlign);
      aligned.reset(new uint64_t[(data.size() + 7) / 8]);
      std::memcpy(aligned.get(), buf, data.size());
      buf = reinterpret_cast<const uint8_t*>(aligned.get());
    }
    const fb::Envelope* env = verified_envelope(buf, data.size());
    if (!env) return malformed("message failed verification (not a native memberlist message, or corrupt)");
    if (env->body_type() == fb::Body_Compound) return decode_compound(*env->body_as_Compound(), out);
    Budget budget{data.size()};
    return Decoder(budget).message(*env, out);
  }
};

}  // namespace

std::shared_ptr<const core::Codec> make_flatbuffers_codec() { return std::make_shared<const FlatBuffersCodec>(); }

}  // namespace memberlist::wire
