// The built-in transport: a UDP socket and a TCP listener on one port.
#include <spdlog/fmt/fmt.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <mutex>

#include "runtime/address.h"
#include "runtime/transport.h"
#include "runtime/udp_socket.h"

namespace memberlist::runtime {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using error_code = boost::system::error_code;

class TcpStream final : public ByteStream {
 public:
  TcpStream(Strand io, asio::ip::address bind_ip) : sock_(io), io_(io), bind_ip_(std::move(bind_ip)) {}
  TcpStream(Strand io, tcp::socket sock) : sock_(std::move(sock)), io_(io) {}

  executor_type get_executor() override { return io_; }
  void connect(const core::Address& to, std::function<void(error_code)> done) override {
    tcp::endpoint ep(detail::to_ip(to), to.port);
    // From the bound address, when it is a specific one: peers (and their allow-lists) see
    // the same source as for our datagrams.
    if (!bind_ip_.is_unspecified() && bind_ip_.is_v4() == ep.address().is_v4()) {
      error_code ec;
      sock_.open(ep.protocol(), ec);
      if (!ec) sock_.bind(tcp::endpoint(bind_ip_, 0), ec);
      if (ec) return asio::post(io_, [done, ec] { done(ec); });
    }
    sock_.async_connect(ep, std::move(done));
  }
  void read_some(asio::mutable_buffer buf, Handler done) override { sock_.async_read_some(buf, std::move(done)); }
  void write_some(asio::const_buffer buf, Handler done) override { sock_.async_write_some(buf, std::move(done)); }
  void shutdown_send() override {
    error_code ignored;
    sock_.shutdown(tcp::socket::shutdown_send, ignored);
  }
  void close() override {
    error_code ignored;
    sock_.close(ignored);
  }
  bool remote(core::Address& out) const override {
    error_code ec;
    auto peer = sock_.remote_endpoint(ec);
    if (ec) return false;
    out = detail::to_core(peer.address(), peer.port());
    return true;
  }

 private:
  tcp::socket sock_;
  Strand io_;
  asio::ip::address bind_ip_;
};

class SocketTransport final : public Transport {
 public:
  explicit SocketTransport(Strand io) : io_(io), acceptor_(io) {}

  core::Status open(const std::string& bind_addr, uint16_t bind_port) {
    error_code ec;
    bind_ip_ = asio::ip::make_address(bind_addr, ec);
    if (ec) return core::Status::error(core::Errc::invalid, "bind_addr '" + bind_addr + "' is not an IP address");
    v6_ = bind_ip_.is_v6();
    // TCP first, then UDP on the same port; with port 0 the kernel's TCP port may be taken
    // for UDP, so try again a few times.
    for (int attempt = 0;; ++attempt) {
      error_code e;
      acceptor_.open(v6_ ? tcp::v6() : tcp::v4(), e);
      if (!e && v6_) acceptor_.set_option(asio::ip::v6_only(false), e);
      if (!e) acceptor_.set_option(tcp::acceptor::reuse_address(true), e);
      if (!e) acceptor_.bind(tcp::endpoint(bind_ip_, bind_port), e);
      if (!e) acceptor_.listen(asio::socket_base::max_listen_connections, e);
      if (e) {
        return core::Status::error(core::Errc::io, fmt::format("bind tcp {}:{}: {}", bind_addr, bind_port, e.message()));
      }
      port_ = acceptor_.local_endpoint().port();
      std::error_code ue = udp_.open_and_bind(udp::endpoint(bind_ip_, port_));
      if (!ue) break;
      error_code ignored;
      acceptor_.close(ignored);
      if (bind_port != 0 || attempt >= 10) {
        return core::Status::error(core::Errc::io, fmt::format("bind udp {}:{}: {}", bind_addr, port_, ue.message()));
      }
    }
    // As the reference: ask for a 2 MiB receive buffer (the kernel caps it silently).
    udp_.set_receive_buffer(2 << 20);
    return core::Status::success();
  }

  core::Address local_address() const override { return detail::to_core(bind_ip_, port_); }
  std::string describe() const override {
    return fmt::format("{}:{} (udp+tcp)", udp_.local_endpoint().address().to_string(), port_);
  }

  std::error_code send_packet(std::span<const uint8_t> data, const core::Address& to) override {
    udp::endpoint ep;
    if (!detail::to_endpoint(to, v6_, ep)) return std::make_error_code(std::errc::address_family_not_supported);
    // The socket is non-blocking; the lock only keeps close() out.
    std::lock_guard<std::mutex> l(mu_);
    return udp_.send_to(data, ep);
  }
  int packet_fd() const override { return udp_.native_handle(); }
  size_t receive_packet(std::span<uint8_t> buf, core::Address& from, bool& would_block, std::error_code& err) override {
    would_block = false;
    std::lock_guard<std::mutex> l(mu_);
    if (udp_.native_handle() < 0) {
      would_block = true;
      return 0;
    }
    auto len = static_cast<socklen_t>(rx_from_.capacity());
    ssize_t n = ::recvfrom(udp_.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT, rx_from_.data(), &len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        would_block = true;
      } else {
        err = std::error_code(errno, std::generic_category());  // e.g. ICMP port unreachable: not fatal
      }
      return 0;
    }
    if (len > rx_from_.capacity()) {  // neither IPv4 nor IPv6
      err = std::make_error_code(std::errc::address_family_not_supported);
      return 0;
    }
    rx_from_.resize(len);
    from = detail::to_core(rx_from_.address(), rx_from_.port());
    return static_cast<size_t>(n);
  }

  std::unique_ptr<ByteStream> new_stream() override { return std::make_unique<TcpStream>(io_, bind_ip_); }
  void accept(std::function<void(error_code, std::unique_ptr<ByteStream>)> done) override {
    // The new socket gets the acceptor's executor: this node's io strand.
    acceptor_.async_accept([this, done = std::move(done)](error_code ec, tcp::socket sock) {
      if (ec) return done(ec, nullptr);
      done(ec, std::make_unique<TcpStream>(io_, std::move(sock)));
    });
  }
  void close() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      udp_.close();
    }
    error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  Strand io_;
  asio::ip::address bind_ip_;
  bool v6_ = false;
  uint16_t port_ = 0;
  tcp::acceptor acceptor_;
  std::mutex mu_;  // udp_: sends from any thread, reads on the ticker's, close on the io strand
  UdpSocket udp_;
  udp::endpoint rx_from_;
};

}  // namespace

std::unique_ptr<Transport> make_socket_transport(const TransportContext& ctx, const std::string& bind_addr,
                                                 uint16_t port, core::Status& status) {
  auto t = std::make_unique<SocketTransport>(ctx.io);
  status = t->open(bind_addr, port);
  if (!status.ok()) return nullptr;
  return t;
}

}  // namespace memberlist::runtime
