// Address and enum helpers from types.h.
#include "core/types.h"

#include <arpa/inet.h>

#include <cstdio>

namespace memberlist::core {

Address Address::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  Address r;
  r.ip[10] = 0xff;
  r.ip[11] = 0xff;
  r.ip[12] = a;
  r.ip[13] = b;
  r.ip[14] = c;
  r.ip[15] = d;
  r.port = port;
  return r;
}

bool Address::is_v4() const {
  for (int i = 0; i < 10; ++i)
    if (ip[i] != 0) return false;
  return ip[10] == 0xff && ip[11] == 0xff;
}

std::string Address::host_string() const {
  if (is_v4()) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", ip[12], ip[13], ip[14], ip[15]);
    return buf;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  // inet_ntop only formats; it cannot fail for AF_INET6 with a large enough buffer.
  ::inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
  return buf;
}

std::string Address::to_string() const {
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "[" + string chains.
  std::string out;
  if (!is_v4()) out += '[';
  out += host_string();
  out += is_v4() ? ":" : "]:";
  out += std::to_string(port);
  return out;
}

const char* to_string(NodeState s) {
  switch (s) {
    case NodeState::Alive: return "alive";
    case NodeState::Suspect: return "suspect";
    case NodeState::Dead: return "dead";
    case NodeState::Left: return "left";
  }
  return "unknown";
}

}  // namespace memberlist::core
