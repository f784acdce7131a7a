// ml_node and ml_node_list: owned copies of what the runtime reports about nodes.
#include <cstring>

#include "capi.h"

using namespace memberlist;
using capi::fail;
using capi::guarded;

ml_node::ml_node(const core::NodeInfo& info)
    : name(info.name),
      addr(info.addr),
      meta(info.meta),
      state(static_cast<uint32_t>(info.state)),
      incarnation(info.incarnation) {
  const core::Vsn& v = info.vsn;
  const uint8_t vs[6] = {v.pmin, v.pmax, v.pcur, v.dmin, v.dmax, v.dcur};
  std::memcpy(versions, vs, sizeof versions);
}

ml_node::ml_node(const ml_node& other)
    : name(other.name),
      addr(other.addr),
      meta(other.meta),
      state(other.state),
      incarnation(other.incarnation) {
  std::memcpy(versions, other.versions, sizeof versions);
}

void ml_node::format() const {
  if (formatted_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(format_mu_);
  if (formatted_.load(std::memory_order_relaxed)) return;
  host_ = addr.host_string();
  address_ = addr.is_v4() ? host_ + ":" : "[" + host_ + "]:";
  address_ += std::to_string(addr.port);
  formatted_.store(true, std::memory_order_release);
}

const std::string& ml_node::address() const {
  format();
  return address_;
}

const std::string& ml_node::host() const {
  format();
  return host_;
}

static_assert(static_cast<uint32_t>(core::NodeState::Alive) == ML_STATE_ALIVE &&
              static_cast<uint32_t>(core::NodeState::Suspect) == ML_STATE_SUSPECT &&
              static_cast<uint32_t>(core::NodeState::Dead) == ML_STATE_DEAD &&
              static_cast<uint32_t>(core::NodeState::Left) == ML_STATE_LEFT);

extern "C" {

ML_API const char* ml_node_name(const ml_node* node) { return node ? node->name.c_str() : ""; }
ML_API const char* ml_node_address(const ml_node* node) {
  return node ? node->address().c_str() : "";
}
ML_API const char* ml_node_host(const ml_node* node) { return node ? node->host().c_str() : ""; }
ML_API uint16_t ml_node_port(const ml_node* node) { return node ? node->addr.port : 0; }
ML_API void ml_node_ip(const ml_node* node, uint8_t out[16]) {
  if (!out) return;
  if (node)
    std::memcpy(out, node->addr.ip.data(), 16);
  else
    std::memset(out, 0, 16);
}

ML_API const uint8_t* ml_node_meta(const ml_node* node, size_t* len) {
  if (len) *len = node ? node->meta.size() : 0;
  return node ? node->meta.data() : nullptr;
}

ML_API ml_status ml_node_get_state(const ml_node* node, uint32_t* state) {
  if (state) *state = ML_STATE_DEAD;
  if (!node) return fail(ML_E_INVALID, "node is NULL");
  if (!state) return fail(ML_E_INVALID, "state is NULL");
  *state = node->state;
  return ML_OK;
}

ML_API uint32_t ml_node_state(const ml_node* node) { return node ? node->state : ML_STATE_DEAD; }
ML_API uint32_t ml_node_incarnation(const ml_node* node) { return node ? node->incarnation : 0; }

ML_API void ml_node_versions(const ml_node* node, uint8_t out[6]) {
  if (!out) return;
  if (node)
    std::memcpy(out, node->versions, sizeof node->versions);
  else
    std::memset(out, 0, 6);
}

ML_API ml_status ml_node_copy(const ml_node* node, ml_node** out) {
  return guarded([&] {
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    *out = nullptr;
    if (!node) return fail(ML_E_INVALID, "node is NULL");
    *out = new ml_node(*node);
    return ML_OK;
  });
}

ML_API void ml_node_free(ml_node* node) { delete node; }

ML_API size_t ml_node_list_len(const ml_node_list* list) { return list ? list->nodes.size() : 0; }

ML_API const ml_node* ml_node_list_get(const ml_node_list* list, size_t index) {
  return list && index < list->nodes.size() ? &list->nodes[index] : nullptr;
}

ML_API void ml_node_list_free(ml_node_list* list) { delete list; }

}  // extern "C"
