// ml_broadcast_queue: the core's TransmitLimitedQueue for hosts that build their own
// broadcasts (as Serf does on top of hashicorp/memberlist).
#include "capi.h"

using namespace memberlist;
using capi::fail;
using capi::guarded;

namespace {

constexpr uint32_t kMaxMult = 64;  // as the retransmit_mult config knob

uint32_t to_outcome(core::FinishReason r) {
  switch (r) {
    case core::FinishReason::Transmitted: return ML_BROADCAST_DELIVERED;
    case core::FinishReason::Replaced: return ML_BROADCAST_REPLACED;
    case core::FinishReason::Dropped: return ML_BROADCAST_DROPPED;
  }
  return ML_BROADCAST_DROPPED;
}

}  // namespace

extern "C" {

ML_API ml_status ml_broadcast_queue_new(uint32_t retransmit_mult, ml_broadcast_queue** out) {
  return ml_broadcast_queue_create(out, retransmit_mult);
}

ML_API ml_status ml_broadcast_queue_create(ml_broadcast_queue** out, uint32_t retransmit_mult) {
  return guarded([&] {
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    *out = nullptr;
    if (retransmit_mult < 1 || retransmit_mult > kMaxMult)
      return fail(ML_E_INVALID, "retransmit_mult: must be in [1, 64]");
    auto q = std::make_unique<ml_broadcast_queue>(static_cast<int>(retransmit_mult));
    q->queue.set_num_nodes(size_t{1});
    *out = q.release();
    return ML_OK;
  });
}

// Messages still queued leave it here: their done callbacks run (ML_BROADCAST_DROPPED), so
// whatever a caller attached to them can be released.
ML_API void ml_broadcast_queue_free(ml_broadcast_queue* queue) {
  if (!queue) return;
  try {
    queue->queue.reset();
  } catch (...) {
    // out of memory while dropping: free the queue anyway
  }
  delete queue;
}

ML_API ml_status ml_broadcast_queue_set_num_nodes(ml_broadcast_queue* queue, uint32_t num_nodes) {
  return guarded([&] {
    if (!queue) return fail(ML_E_INVALID, "queue is NULL");
    queue->queue.set_num_nodes(size_t{num_nodes});
    return ML_OK;
  });
}

ML_API ml_status ml_broadcast_queue_push(ml_broadcast_queue* queue, const char* name,
                                         const uint8_t* data, size_t len, ml_broadcast_done_fn done,
                                         void* done_user_data) {
  return guarded([&] {
    if (!queue) return fail(ML_E_INVALID, "queue is NULL");
    if (!data && len > 0) return fail(ML_E_INVALID, "data is NULL but len is not 0");
    core::Bytes msg = len > 0 ? core::Bytes(data, data + len) : core::Bytes();
    core::TransmitLimitedQueue::Done hook;
    if (done) hook = [done, done_user_data](core::FinishReason r) { done(done_user_data, to_outcome(r)); };
    if (name && name[0] != '\0')
      queue->queue.queue_named(name, std::move(msg), std::move(hook));
    else
      queue->queue.queue_unique(std::move(msg), std::move(hook));
    return ML_OK;
  });
}

ML_API ml_status ml_broadcast_queue_get(ml_broadcast_queue* queue, size_t overhead, size_t limit,
                                        ml_bytes_list** out) {
  return guarded([&] {
    if (!out) return fail(ML_E_INVALID, "out is NULL");
    *out = nullptr;
    if (!queue) return fail(ML_E_INVALID, "queue is NULL");
    auto list = std::make_unique<ml_bytes_list>();
    list->items = queue->queue.get_broadcasts(overhead, limit);
    *out = list.release();
    return ML_OK;
  });
}

ML_API size_t ml_broadcast_queue_len(const ml_broadcast_queue* queue) {
  return queue ? queue->queue.size() : 0;
}

ML_API ml_status ml_broadcast_queue_prune(ml_broadcast_queue* queue, size_t max_retain) {
  return guarded([&] {
    if (!queue) return fail(ML_E_INVALID, "queue is NULL");
    queue->queue.prune(max_retain);
    return ML_OK;
  });
}

ML_API ml_status ml_broadcast_queue_reset(ml_broadcast_queue* queue) {
  return guarded([&] {
    if (!queue) return fail(ML_E_INVALID, "queue is NULL");
    queue->queue.reset();
    return ML_OK;
  });
}

}  // extern "C"
