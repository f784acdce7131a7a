// A node's UDP socket as a plain descriptor. The runtime's Ticker waits for it in its own
// epoll set; an asio socket would also register it with Asio's reactor (edge-triggered, on
// open), whose thread then woke for every datagram and handed the wake-up on to another
// pool thread: two useless thread switches per datagram, most of an idle node's CPU.
#pragma once

#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <span>
#include <system_error>

namespace memberlist::runtime {

class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket() { close(); }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // A non-blocking socket bound to `ep` (an IPv6 one also takes IPv4, v4-mapped).
  std::error_code open_and_bind(const boost::asio::ip::udp::endpoint& ep);
  // Asks for a receive buffer of `bytes` (the kernel caps it silently).
  void set_receive_buffer(int bytes);
  // One datagram, never blocking: a full send buffer is an error (EAGAIN), not a wait.
  std::error_code send_to(std::span<const uint8_t> data, const boost::asio::ip::udp::endpoint& to);
  boost::asio::ip::udp::endpoint local_endpoint() const;
  int native_handle() const { return fd_; }
  void close();

 private:
  int fd_ = -1;
};

}  // namespace memberlist::runtime
