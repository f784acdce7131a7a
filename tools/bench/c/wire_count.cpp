// Counts the bytes this process hands to the kernel on sockets, by interposing the libc send
// calls (the executable exports them, so libmemberlist.so's calls bind here first). The C ABI
// has no traffic counters yet (a later issue adds metrics); this is the substitute, and it
// counts what the Go program's Transport wrapper counts: UDP payloads and TCP stream bytes.
#include "wire_count.h"

#include <dlfcn.h>
#include <sys/socket.h>

#include <atomic>

namespace {

std::atomic<uint64_t> g_bytes{0};
std::atomic<uint64_t> g_calls{0};

template <typename Fn>
Fn next_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

ssize_t count(ssize_t sent) {
  if (sent > 0) {
    g_bytes.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
    g_calls.fetch_add(1, std::memory_order_relaxed);
  }
  return sent;
}

}  // namespace

// The project builds with hidden visibility; these must be exported to interpose.
#define WIRE_COUNT_EXPORT __attribute__((visibility("default")))

uint64_t wire_bytes_sent() { return g_bytes.load(); }
uint64_t wire_send_calls() { return g_calls.load(); }

extern "C" {

WIRE_COUNT_EXPORT ssize_t send(int fd, const void* buf, size_t len, int flags) {
  static auto real = next_symbol<ssize_t (*)(int, const void*, size_t, int)>("send");
  return count(real(fd, buf, len, flags));
}

WIRE_COUNT_EXPORT ssize_t sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* to,
               socklen_t tolen) {
  static auto real = next_symbol<ssize_t (*)(int, const void*, size_t, int,
                                             const struct sockaddr*, socklen_t)>("sendto");
  return count(real(fd, buf, len, flags, to, tolen));
}

WIRE_COUNT_EXPORT ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  static auto real = next_symbol<ssize_t (*)(int, const struct msghdr*, int)>("sendmsg");
  return count(real(fd, msg, flags));
}

WIRE_COUNT_EXPORT int sendmmsg(int fd, struct mmsghdr* vec, unsigned int n, int flags) {
  static auto real = next_symbol<int (*)(int, struct mmsghdr*, unsigned int, int)>("sendmmsg");
  int r = real(fd, vec, n, flags);
  for (int i = 0; i < r; ++i) count(static_cast<ssize_t>(vec[i].msg_len));
  return r;
}

}  // extern "C"
