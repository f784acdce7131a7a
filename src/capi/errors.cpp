// Versions, status names and the two layers of error messages.
#include <algorithm>
#include <cstring>

#include "capi.h"

// The header's version macros and the CMake project version must agree.
static_assert(ML_VERSION_MAJOR == ML_PROJECT_VERSION_MAJOR &&
                  ML_VERSION_MINOR == ML_PROJECT_VERSION_MINOR &&
                  ML_VERSION_PATCH == ML_PROJECT_VERSION_PATCH,
              "include/memberlist.h ML_VERSION_* differ from project(VERSION) in CMakeLists.txt");
static_assert(ML_ABI_VERSION == ML_PROJECT_ABI_VERSION,
              "include/memberlist.h ML_ABI_VERSION differs from ML_ABI_VERSION in CMakeLists.txt");

namespace memberlist::capi {

void ErrorBuffer::set(std::string_view msg, std::string_view detail) noexcept {
  size_t n = std::min(msg.size(), kErrorCapacity - 1);
  if (n > 0) std::memcpy(text, msg.data(), n);  // an empty view's data() may be NULL
  size_t m = std::min(detail.size(), kErrorCapacity - 1 - n);
  if (m > 0) std::memcpy(text + n, detail.data(), m);
  text[n + m] = '\0';
}

ErrorBuffer& thread_error() noexcept {
  thread_local ErrorBuffer buffer;
  return buffer;
}

ml_status fail(ml_status status, std::string_view msg, std::string_view detail) noexcept {
  thread_error().set(msg, detail);
  return status;
}

namespace {
// This thread's last failure on a handle (named by its generation: an address may be reused
// by a later handle).
struct HandleError {
  uint64_t generation = 0;
  ErrorBuffer text;
};
HandleError& thread_handle_error() noexcept {
  thread_local HandleError e;
  return e;
}
}  // namespace

ml_status fail(ml_memberlist* ml, ml_status status, std::string_view msg,
               std::string_view detail) noexcept {
  if (ml) {
    auto& mine = thread_handle_error();
    mine.generation = ml->generation;
    mine.text.set(msg, detail);
    std::lock_guard lock(ml->error_mu);
    ml->error.set(msg, detail);
  }
  return fail(status, msg, detail);
}

const char* handle_error(const ml_memberlist* ml) noexcept {
  auto& mine = thread_handle_error();
  if (mine.generation == ml->generation) return mine.text.text;
  // Another thread's failure: copied here, so that no other thread rewrites what we return.
  thread_local ErrorBuffer copy;
  std::lock_guard lock(ml->error_mu);
  copy = ml->error;
  return copy.text;
}

ml_status fail(ml_memberlist* ml, const core::Status& st) noexcept {
  ml_status s = to_status(st.code);
  if (s == ML_OK) s = ML_E_INTERNAL;  // a failure without a code is our bug
  return fail(ml, s, st.message.empty() ? std::string_view(ml_status_str(s)) : st.message);
}

ml_status to_status(core::Errc code) noexcept {
  switch (code) {
    case core::Errc::ok: return ML_OK;
    case core::Errc::invalid: return ML_E_INVALID;
    case core::Errc::protocol: return ML_E_PROTOCOL;
    case core::Errc::timeout: return ML_E_TIMEOUT;
    case core::Errc::not_found: return ML_E_NOT_FOUND;
    case core::Errc::state: return ML_E_STATE;
    case core::Errc::rejected: return ML_E_REJECTED;
    case core::Errc::io: return ML_E_IO;
    case core::Errc::too_large: return ML_E_TOO_LARGE;
  }
  return ML_E_INTERNAL;
}

}  // namespace memberlist::capi

#define ML_STR2(x) #x
#define ML_STR(x) ML_STR2(x)

extern "C" {

ML_API void ml_version(uint32_t* major, uint32_t* minor, uint32_t* patch) {
  if (major) *major = ML_VERSION_MAJOR;
  if (minor) *minor = ML_VERSION_MINOR;
  if (patch) *patch = ML_VERSION_PATCH;
}

ML_API const char* ml_version_string(void) {
  return ML_STR(ML_VERSION_MAJOR) "." ML_STR(ML_VERSION_MINOR) "." ML_STR(ML_VERSION_PATCH);
}

ML_API uint32_t ml_abi_version(void) { return ML_ABI_VERSION; }

ML_API const char* ml_status_str(ml_status status) {
  switch (status) {
    case ML_OK: return "ok";
    case ML_E_INVALID: return "invalid argument";
    case ML_E_NOMEM: return "out of memory";
    case ML_E_BUFFER_TOO_SMALL: return "buffer too small";
    case ML_E_NOT_FOUND: return "not found";
    case ML_E_STATE: return "not allowed in this state";
    case ML_E_CLOSED: return "memberlist is shut down";
    case ML_E_CALLBACK: return "host callback failed";
    case ML_E_PROTOCOL: return "protocol error";
    case ML_E_VERSION: return "incompatible version";
    case ML_E_TIMEOUT: return "timed out";
    case ML_E_IO: return "I/O error";
    case ML_E_REJECTED: return "rejected";
    case ML_E_TOO_LARGE: return "too large";
    case ML_E_INTERNAL: return "internal error";
  }
  return "unknown status";
}

ML_API const char* ml_last_error(void) { return memberlist::capi::thread_error().text; }

}  // extern "C"
