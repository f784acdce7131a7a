// ml_network: the in-memory network (runtime/mem_network.h) and ml_config_set_network.
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "capi.h"

using namespace memberlist;
using capi::fail;
using capi::guarded;

namespace {

ml_status parse(const char* what, const char* text, core::Address& out) {
  if (!text) return fail(ML_E_INVALID, what, " is NULL");
  auto st = runtime::parse_network_address(text, out);
  if (!st.ok()) return fail(ML_E_INVALID, st.message);
  return ML_OK;
}

ml_status parse_group(const char* what, const char* const* list, size_t count, std::vector<core::Address>& out) {
  if (!list && count > 0) return fail(ML_E_INVALID, what, " is NULL");
  for (size_t i = 0; i < count; ++i) {
    core::Address a;
    if (ml_status s = parse(what, list[i], a)) return s;
    out.push_back(a);
  }
  return ML_OK;
}

ml_status check_link(double loss, uint32_t delay_ms, runtime::MemNetwork::Link& out) {
  if (!(loss >= 0.0 && loss <= 1.0)) return fail(ML_E_INVALID, "loss: must be between 0 and 1");
  if (delay_ms > 60'000) return fail(ML_E_INVALID, "delay_ms: must be at most 60000");
  out.loss = loss;
  out.delay = std::chrono::milliseconds(delay_ms);
  return ML_OK;
}

}  // namespace

ML_API ml_status ml_network_create(ml_network** out) {
  return guarded([&] {
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    *out = nullptr;
    auto n = std::make_unique<ml_network>();
    n->net = std::make_shared<runtime::MemNetwork>();
    *out = n.release();
    return ML_OK;
  });
}

ML_API void ml_network_destroy(ml_network* net) { delete net; }

ML_API ml_status ml_config_set_network(ml_config* config, ml_network* net, const char* address) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (!net) {
      config->opts.transport = nullptr;
      return ML_OK;
    }
    core::Address addr;
    if (ml_status s = parse("address", address, addr)) return s;
    config->opts.transport = runtime::MemNetwork::factory(net->net, addr);
    config->host_transport.reset();
    return ML_OK;
  });
}

ML_API ml_status ml_network_set_default_link(ml_network* net, double loss, uint32_t delay_ms) {
  return guarded([&] {
    if (!net) return fail(ML_E_INVALID, "network is NULL");
    runtime::MemNetwork::Link l;
    if (ml_status s = check_link(loss, delay_ms, l)) return s;
    net->net->set_default_link(l);
    return ML_OK;
  });
}

ML_API ml_status ml_network_set_link(ml_network* net, const char* from, const char* to, double loss,
                                     uint32_t delay_ms) {
  return guarded([&] {
    if (!net) return fail(ML_E_INVALID, "network is NULL");
    core::Address a, b;
    runtime::MemNetwork::Link l;
    if (ml_status s = parse("from", from, a)) return s;
    if (ml_status s = parse("to", to, b)) return s;
    if (ml_status s = check_link(loss, delay_ms, l)) return s;
    net->net->set_link(a, b, l);
    return ML_OK;
  });
}

ML_API ml_status ml_network_clear_links(ml_network* net) {
  return guarded([&] {
    if (!net) return fail(ML_E_INVALID, "network is NULL");
    net->net->clear_links();
    return ML_OK;
  });
}

ML_API ml_status ml_network_partition(ml_network* net, const char* const* group_a, size_t count_a,
                                      const char* const* group_b, size_t count_b) {
  return guarded([&] {
    if (!net) return fail(ML_E_INVALID, "network is NULL");
    std::vector<core::Address> a, b;
    if (ml_status s = parse_group("group_a", group_a, count_a, a)) return s;
    if (ml_status s = parse_group("group_b", group_b, count_b, b)) return s;
    net->net->partition(a, b);
    return ML_OK;
  });
}

ML_API ml_status ml_network_block(ml_network* net, const char* address, uint32_t blocked) {
  return guarded([&] {
    if (!net) return fail(ML_E_INVALID, "network is NULL");
    core::Address a;
    if (ml_status s = parse("address", address, a)) return s;
    net->net->block(a, blocked != 0);
    return ML_OK;
  });
}

ML_API ml_status ml_network_heal(ml_network* net) {
  return guarded([&] {
    if (!net) return fail(ML_E_INVALID, "network is NULL");
    net->net->heal();
    return ML_OK;
  });
}

// ---- host transport -----------------------------------------------------------------------

namespace {
// Size of ml_transport as declared by each version (fields are only appended).
constexpr size_t kTransportSize[] = {
    0,                                                                       // version 0: invalid
    offsetof(ml_transport, stream_reply) + sizeof(ml_transport::stream_reply),  // version 1
    offsetof(ml_transport, send_stream_flags) + sizeof(ml_transport::send_stream_flags),  // version 2
};
static_assert(ML_TRANSPORT_VERSION == 2, "add the new version's size to kTransportSize");
static_assert(kTransportSize[ML_TRANSPORT_VERSION] == sizeof(ml_transport));
}  // namespace

std::shared_ptr<runtime::HostLink> memberlist::capi::make_host_link(const ml_transport& t, const core::Address& addr) {
  runtime::HostLink::Callbacks cb;
  cb.send_packet = [t](const core::Address& to, std::span<const uint8_t> data) {
    return t.send_packet(t.user_data, to.to_string().c_str(), data.data(), data.size()) == 0;
  };
  cb.send_stream = [t](const core::Address& to, uint64_t token, std::span<const uint8_t> data, bool expect_reply) {
    if (t.send_stream_flags)
      return t.send_stream_flags(t.user_data, to.to_string().c_str(), token, data.data(), data.size(),
                                 expect_reply ? ML_STREAM_EXPECTS_REPLY : 0u) == 0;
    return t.send_stream(t.user_data, to.to_string().c_str(), token, data.data(), data.size()) == 0;
  };
  cb.stream_reply = [t](uint64_t token, std::span<const uint8_t> reply, bool has_reply) {
    if (t.stream_reply) t.stream_reply(t.user_data, token, reply.data(), reply.size(), has_reply ? 1u : 0u);
  };
  return std::make_shared<runtime::HostLink>(addr, std::move(cb));
}

ML_API ml_status ml_config_set_transport(ml_config* config, const ml_transport* transport, const char* address) {
  return guarded([&] {
    if (!config) return fail(ML_E_INVALID, "config is NULL");
    if (!transport) {
      config->host_transport.reset();
      return ML_OK;
    }
    if (transport->version == 0)
      return fail(ML_E_VERSION, "transport->version is 0; set it to ML_TRANSPORT_VERSION");
    if (transport->version > ML_TRANSPORT_VERSION)
      return fail(ML_E_VERSION, "transport->version is newer than this library knows: link against a newer libmemberlist");
    // Only the fields of the host's version are read; later ones stay NULL.
    ml_transport t{};
    std::memcpy(&t, transport, kTransportSize[transport->version]);
    if (!t.send_packet || !(t.send_stream || t.send_stream_flags) || !t.stream_reply)
      return fail(ML_E_INVALID,
                  "transport: send_packet, stream_reply and one of send_stream and send_stream_flags are required");
    core::Address addr;
    if (ml_status s = parse("address", address, addr)) return s;
    config->host_transport = t;
    config->host_addr = addr;
    config->opts.transport = nullptr;
    return ML_OK;
  });
}

namespace {
// The host transport of a memberlist, or a failure recorded on it.
ml_status host_of(ml_memberlist* ml, const char* what) {
  if (!ml->host) return fail(ml, ML_E_STATE, what, ": the memberlist has no host transport (ml_config_set_transport)");
  if (ml->shut_down) return fail(ml, ML_E_CLOSED, what, ": the memberlist is shut down");
  return ML_OK;
}
ml_status parse_on(ml_memberlist* ml, const char* what, const char* text, core::Address& out) {
  if (!text) return fail(ml, ML_E_INVALID, what, " is NULL");
  auto st = runtime::parse_network_address(text, out);
  return st.ok() ? ML_OK : fail(ml, st);
}
}  // namespace

#define ML_ON_HOST(ml, what, body)                               \
  if (!(ml)) return fail(ML_E_INVALID, "memberlist is NULL");    \
  capi::CallGuard guard_(ml);                                    \
  return guarded(ml, [&]() -> ml_status {                        \
    if (ml_status s = host_of(ml, what)) return s;               \
    body                                                         \
  })

ML_API ml_status ml_memberlist_transport_packet(ml_memberlist* ml, const char* from, const uint8_t* data, size_t len) {
  ML_ON_HOST(ml, "ml_memberlist_transport_packet", {
    core::Address a;
    if (ml_status s = parse_on(ml, "from", from, a)) return s;
    if (!data && len > 0) return fail(ml, ML_E_INVALID, "data is NULL but len is not 0");
    core::Status st = ml->host->packet(a, {data, len});
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_transport_stream(ml_memberlist* ml, const char* from, uint64_t token,
                                                const uint8_t* data, size_t len) {
  ML_ON_HOST(ml, "ml_memberlist_transport_stream", {
    core::Address a;
    if (ml_status s = parse_on(ml, "from", from, a)) return s;
    if (!data && len > 0) return fail(ml, ML_E_INVALID, "data is NULL but len is not 0");
    core::Status st = ml->host->stream(a, token, {data, len});
    return st.ok() ? ML_OK : fail(ml, st);
  });
}

ML_API ml_status ml_memberlist_transport_stream_done(ml_memberlist* ml, uint64_t token, ml_status status,
                                                     const uint8_t* reply, size_t len) {
  ML_ON_HOST(ml, "ml_memberlist_transport_stream_done", {
    if (!reply && len > 0) return fail(ml, ML_E_INVALID, "reply is NULL but len is not 0");
    core::Status transport;
    if (status == ML_E_TIMEOUT) {
      transport = core::Status::error(core::Errc::timeout, "it reported a timeout (ML_E_TIMEOUT)");
    } else if (status == ML_E_REJECTED) {
      transport = core::Status::error(core::Errc::rejected, "refused");
    } else if (status != ML_OK) {
      transport = core::Status::error(core::Errc::io, std::string("it completed the stream with status ") +
                                                          std::to_string(status) + " (" + ml_status_str(status) + ")");
    }
    core::Status st = ml->host->stream_done(token, transport, {reply, len});
    return st.ok() ? ML_OK : fail(ml, st);
  });
}
