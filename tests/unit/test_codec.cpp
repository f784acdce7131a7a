#include "test_codec.h"

#include <cstring>

namespace memberlist::test {

using namespace core;

namespace {

constexpr uint8_t kCompound = 0xC7;

struct Writer {
  Bytes out;
  void u8(uint8_t v) { out.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void bytes(const Bytes& b) {
    u32(static_cast<uint32_t>(b.size()));
    out.insert(out.end(), b.begin(), b.end());
  }
  void str(const std::string& s) { bytes(Bytes(s.begin(), s.end())); }
  void addr(const Address& a) {
    out.insert(out.end(), a.ip.begin(), a.ip.end());
    u8(static_cast<uint8_t>(a.port >> 8));
    u8(static_cast<uint8_t>(a.port));
  }
  void vsn(const Vsn& v) {
    for (uint8_t x : {v.pmin, v.pmax, v.pcur, v.dmin, v.dmax, v.dcur}) u8(x);
  }
};

struct Reader {
  std::span<const uint8_t> in;
  size_t pos = 0;
  bool ok = true;
  bool need(size_t n) {
    if (!ok || in.size() - pos < n) ok = false;
    return ok;
  }
  uint8_t u8() { return need(1) ? in[pos++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }
  Bytes bytes() {
    uint32_t n = u32();
    if (!need(n)) return {};
    Bytes b(in.begin() + static_cast<long>(pos), in.begin() + static_cast<long>(pos + n));
    pos += n;
    return b;
  }
  std::string str() {
    Bytes b = bytes();
    return std::string(b.begin(), b.end());
  }
  Address addr() {
    Address a;
    if (!need(18)) return a;
    std::memcpy(a.ip.data(), in.data() + pos, 16);
    pos += 16;
    a.port = static_cast<uint16_t>((in[pos] << 8) | in[pos + 1]);
    pos += 2;
    return a;
  }
  Vsn vsn() {
    Vsn v;
    v.pmin = u8(); v.pmax = u8(); v.pcur = u8(); v.dmin = u8(); v.dmax = u8(); v.dcur = u8();
    return v;
  }
};

void write(Writer& w, const Ping& m) { w.u32(m.seq); w.str(m.node); w.addr(m.source); w.str(m.source_node); }
void write(Writer& w, const IndirectPing& m) {
  w.u32(m.seq); w.addr(m.target); w.str(m.node); w.u8(m.nack); w.addr(m.source); w.str(m.source_node);
}
void write(Writer& w, const Ack& m) { w.u32(m.seq); w.bytes(m.payload); }
void write(Writer& w, const Nack& m) { w.u32(m.seq); }
void write(Writer& w, const Suspect& m) { w.u32(m.incarnation); w.str(m.node); w.str(m.from); }
void write(Writer& w, const Alive& m) { w.u32(m.incarnation); w.str(m.node); w.addr(m.addr); w.bytes(m.meta); w.vsn(m.vsn); }
void write(Writer& w, const Dead& m) { w.u32(m.incarnation); w.str(m.node); w.str(m.from); }
void write(Writer& w, const PushPull& m) {
  w.u8(m.join);
  w.u32(static_cast<uint32_t>(m.nodes.size()));
  for (const auto& n : m.nodes) {
    w.str(n.name); w.addr(n.addr); w.bytes(n.meta); w.u32(n.incarnation);
    w.u8(static_cast<uint8_t>(n.state)); w.vsn(n.vsn);
  }
  w.bytes(m.user_state);
}
void write(Writer& w, const UserMsg& m) { w.bytes(m.payload); }
void write(Writer& w, const ErrResp& m) { w.str(m.error); }
void write(Writer& w, const UserBroadcast& m) { w.str(m.origin); w.u32(m.epoch); w.u32(m.seq); w.str(m.name); w.bytes(m.payload); }

bool read_one(Reader& r, Message& out) {
  switch (r.u8()) {
    case 0: { Ping m; m.seq = r.u32(); m.node = r.str(); m.source = r.addr(); m.source_node = r.str(); out = m; break; }
    case 1: {
      IndirectPing m; m.seq = r.u32(); m.target = r.addr(); m.node = r.str(); m.nack = r.u8() != 0;
      m.source = r.addr(); m.source_node = r.str(); out = m; break;
    }
    case 2: { Ack m; m.seq = r.u32(); m.payload = r.bytes(); out = m; break; }
    case 3: { Nack m; m.seq = r.u32(); out = m; break; }
    case 4: { Suspect m; m.incarnation = r.u32(); m.node = r.str(); m.from = r.str(); out = m; break; }
    case 5: { Alive m; m.incarnation = r.u32(); m.node = r.str(); m.addr = r.addr(); m.meta = r.bytes(); m.vsn = r.vsn(); out = m; break; }
    case 6: { Dead m; m.incarnation = r.u32(); m.node = r.str(); m.from = r.str(); out = m; break; }
    case 7: {
      PushPull m; m.join = r.u8() != 0;
      uint32_t n = r.u32();
      for (uint32_t i = 0; i < n && r.ok; ++i) {
        PushNodeState s; s.name = r.str(); s.addr = r.addr(); s.meta = r.bytes(); s.incarnation = r.u32();
        uint8_t state = r.u8();
        if (state > 3) r.ok = false;
        s.state = static_cast<NodeState>(state); s.vsn = r.vsn();
        m.nodes.push_back(std::move(s));
      }
      m.user_state = r.bytes(); out = m; break;
    }
    case 8: { UserMsg m; m.payload = r.bytes(); out = m; break; }
    case 9: { ErrResp m; m.error = r.str(); out = m; break; }
    case 10: {
      UserBroadcast m; m.origin = r.str(); m.epoch = r.u32(); m.seq = r.u32(); m.name = r.str(); m.payload = r.bytes();
      out = m; break;
    }
    default: return false;
  }
  return r.ok && r.pos == r.in.size();
}

}  // namespace

Bytes TestCodec::encode(const Message& msg) const {
  Writer w;
  w.u8(static_cast<uint8_t>(msg.index()));
  std::visit([&](const auto& m) { write(w, m); }, msg);
  return std::move(w.out);
}

Bytes TestCodec::pack(const std::vector<Bytes>& parts) const {
  if (parts.size() == 1) return parts[0];
  Writer w;
  w.u8(kCompound);
  w.u8(static_cast<uint8_t>(parts.size()));
  for (const auto& p : parts) w.u32(static_cast<uint32_t>(p.size()));
  for (const auto& p : parts) w.out.insert(w.out.end(), p.begin(), p.end());
  return std::move(w.out);
}

Status TestCodec::decode(std::span<const uint8_t> data, std::vector<Message>& out) const {
  auto bad = Status::error(Errc::protocol, "malformed message");
  if (data.empty()) return bad;
  if (data[0] != kCompound) {
    Reader r{data};
    Message m;
    if (!read_one(r, m)) return bad;
    out.push_back(std::move(m));
    return Status::success();
  }
  Reader r{data, 1};
  size_t n = r.u8();
  std::vector<uint32_t> lens;
  for (size_t i = 0; i < n; ++i) lens.push_back(r.u32());
  if (!r.ok) return bad;
  Status result = Status::success();
  for (uint32_t len : lens) {
    if (data.size() - r.pos < len) return bad;
    Reader part{data.subspan(r.pos, len)};
    r.pos += len;
    Message m;
    if (read_one(part, m)) out.push_back(std::move(m));
    else result = bad;
  }
  return result;
}

}  // namespace memberlist::test
