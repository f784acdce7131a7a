// ml_network: the in-memory network (runtime/mem_network.h) and ml_config_set_network.
#include <chrono>
#include <cmath>
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
