#include "runtime/udp_socket.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace memberlist::runtime {

namespace {
std::error_code last_error() { return {errno, std::generic_category()}; }
}  // namespace

std::error_code UdpSocket::open_and_bind(const boost::asio::ip::udp::endpoint& ep) {
  close();
  const bool v6 = ep.address().is_v6();
  fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return last_error();
  int off = 0;
  if (v6 && ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) {
    auto ec = last_error();
    close();
    return ec;
  }
  if (::bind(fd_, ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
    auto ec = last_error();
    close();
    return ec;
  }
  return {};
}

void UdpSocket::set_receive_buffer(int bytes) {
  if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

std::error_code UdpSocket::send_to(std::span<const uint8_t> data, const boost::asio::ip::udp::endpoint& to) {
  if (fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);
  if (::sendto(fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL, to.data(),
               static_cast<socklen_t>(to.size())) < 0) {
    return last_error();
  }
  return {};
}

boost::asio::ip::udp::endpoint UdpSocket::local_endpoint() const {
  boost::asio::ip::udp::endpoint ep;
  auto len = static_cast<socklen_t>(ep.capacity());
  if (fd_ >= 0 && ::getsockname(fd_, ep.data(), &len) == 0 && len <= ep.capacity()) ep.resize(len);
  return ep;
}

void UdpSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace memberlist::runtime
