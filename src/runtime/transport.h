// The seam between a node and the network it runs on: datagrams to and from an address, and
// byte streams (dialled or accepted). Framing, encryption, budgets, timers and the protocol
// stay above it, in State; a transport only carries bytes. Implementations: the UDP+TCP
// sockets (socket_transport.cpp) and the in-memory network (mem_network.h).
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/error_code.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include "core/types.h"

namespace memberlist::runtime {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

// A byte stream to or from a peer (a TCP connection or its equivalent). Used only on the
// node's io strand; every completion runs there, never inside the call that started it.
// It models Asio's AsyncReadStream and AsyncWriteStream, so asio::async_read/async_write
// work on it.
class ByteStream {
 public:
  using executor_type = Strand;
  using Handler = std::function<void(boost::system::error_code, size_t)>;
  virtual ~ByteStream() = default;
  virtual executor_type get_executor() = 0;
  // Dials `to` (a stream from Transport::new_stream only).
  virtual void connect(const core::Address& to, std::function<void(boost::system::error_code)> done) = 0;
  // Some bytes into `buf` (at least one, or an error: eof once the peer shut down sending).
  virtual void read_some(boost::asio::mutable_buffer buf, Handler done) = 0;
  virtual void write_some(boost::asio::const_buffer buf, Handler done) = 0;
  // No more writes from us: the peer reads eof after what was written.
  virtual void shutdown_send() = 0;
  // Pending operations complete with an error; idempotent.
  virtual void close() = 0;
  // The peer's address; false if unknown (already gone).
  virtual bool remote(core::Address& out) const = 0;
  // Whether the message about to be written waits for a reply (before the first write): a
  // transport that carries one message per stream tells its carrier.
  virtual void expect_reply(bool) {}
  // Why the stream failed in `what` ("connect", "read", ...) with `ec`, in the transport's own
  // words when it has better ones than the socket's error text; nullopt: those apply.
  virtual std::optional<core::Status> explain(const char* /*what*/, boost::system::error_code /*ec*/) const {
    return std::nullopt;
  }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
        [this](auto handler, const Buffers& bufs) {
          read_some(*boost::asio::buffer_sequence_begin(bufs), wrap(std::move(handler)));
        },
        token, b);
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
        [this](auto handler, const Buffers& bufs) {
          write_some(*boost::asio::buffer_sequence_begin(bufs), wrap(std::move(handler)));
        },
        token, b);
  }

 private:
  // Asio's handlers may be move-only; std::function wants a copy.
  template <class H>
  static Handler wrap(H&& h) {
    auto p = std::make_shared<std::decay_t<H>>(std::forward<H>(h));
    return [p](boost::system::error_code ec, size_t n) { (*p)(ec, n); };
  }
};

// One node's network. Datagrams: send_packet from any thread; received ones are read on the
// runtime's ticker thread, which waits for packet_fd() to be readable and then calls
// receive_packet until it reports none. Streams: on the node's io strand.
class Transport {
 public:
  virtual ~Transport() = default;
  // The address datagrams and streams come from (what to advertise unless told otherwise).
  virtual core::Address local_address() const = 0;
  // For the log: "udp+tcp 10.0.0.1:7946", "in-memory 10.0.0.1:7946".
  virtual std::string describe() const = 0;

  // One datagram, never blocking; an error means it was not sent.
  virtual std::error_code send_packet(std::span<const uint8_t> data, const core::Address& to) = 0;
  // Readable (level-triggered) while datagrams wait.
  virtual int packet_fd() const = 0;
  // One waiting datagram into `buf`: its size, 0 with `would_block` set when none waits, or
  // 0 with `err` set for a datagram lost on the way (skip it). `from` is its source.
  virtual size_t receive_packet(std::span<uint8_t> buf, core::Address& from, bool& would_block, std::error_code& err) = 0;

  // An unconnected stream, to connect().
  virtual std::unique_ptr<ByteStream> new_stream() = 0;
  // The next inbound stream (one accept at a time).
  virtual void accept(std::function<void(boost::system::error_code, std::unique_ptr<ByteStream>)> done) = 0;

  // Stops receiving and accepting (pending accept completes with an error); io strand.
  // Datagram sends fail from then on.
  virtual void close() = 0;
};

// What a transport is made with: the node's io strand (its streams' executor).
struct TransportContext {
  Strand io;
};

// Makes a node's transport (Options::transport); on error returns nullptr and sets `status`.
using TransportFactory = std::function<std::unique_ptr<Transport>(const TransportContext&, core::Status& status)>;

// The built-in UDP+TCP sockets on one port of `bind_addr` (an IP literal; port 0: the kernel
// picks one).
std::unique_ptr<Transport> make_socket_transport(const TransportContext& ctx, const std::string& bind_addr,
                                                 uint16_t port, core::Status& status);

}  // namespace memberlist::runtime
