// Bytes sent on sockets by this process (see wire_count.cpp).
#pragma once

#include <cstdint>

// Total bytes the kernel accepted from send/sendto/sendmsg/sendmmsg since start.
uint64_t wire_bytes_sent();
// Number of successful send calls (0 means the interposition is not in effect).
uint64_t wire_send_calls();
