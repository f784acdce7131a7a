// The in-memory network (mem_network.h): a node's inbox of datagrams behind an eventfd (so
// the runtime's ticker reads it as it reads a UDP socket), streams as pairs of in-memory
// pipes, and a thread that delivers delayed datagrams.
#include "runtime/mem_network.h"

#include "runtime/address.h"
#include "runtime/node.h"

#include <spdlog/fmt/fmt.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <deque>

namespace memberlist::runtime {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

// One attached node: its inbox of datagrams and its queue of inbound streams.
struct MemEndpoint {
  MemEndpoint(core::Address a, Strand s) : addr(a), io(s), efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~MemEndpoint() {
    if (efd >= 0) ::close(efd);
  }
  const core::Address addr;
  Strand io;
  const int efd;  // readable exactly while `inbox` is not empty

  std::mutex mu;
  bool closed = false;
  std::deque<std::pair<core::Address, core::Bytes>> inbox;
  std::function<void(error_code, std::unique_ptr<ByteStream>)> accepting;
  std::deque<std::unique_ptr<ByteStream>> backlog;

  // Caller holds mu.
  void signal() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd, &one, sizeof one);
  }
  void unsignal() {
    uint64_t v;
    [[maybe_unused]] auto n = ::read(efd, &v, sizeof v);
  }
  void push(core::Address from, core::Bytes data) {
    std::lock_guard<std::mutex> l(mu);
    if (closed || inbox.size() >= MemNetwork::kInboxDepth) return;  // lost, as in a full socket buffer
    if (inbox.empty()) signal();
    inbox.emplace_back(from, std::move(data));
  }
  // An inbound stream; false if it cannot be taken (closed, backlog full).
  // Hands `s` to the acceptor; refused (closed, or the backlog full), `s` stays the caller's.
  bool offer(std::unique_ptr<ByteStream>& s) {
    std::lock_guard<std::mutex> l(mu);
    if (closed) return false;
    if (accepting) {
      auto done = std::move(accepting);
      accepting = nullptr;
      auto held = std::make_shared<std::unique_ptr<ByteStream>>(std::move(s));
      asio::post(io, [done = std::move(done), held] { done({}, std::move(*held)); });
      return true;
    }
    if (backlog.size() >= MemNetwork::kAcceptBacklog) return false;
    backlog.push_back(std::move(s));
    return true;
  }
};

namespace {

// Both directions of one in-memory connection, under one lock. Side 0 dialled, side 1 was
// accepted; each reads what the other wrote.
struct Pipe {
  Pipe(Strand dialer, core::Address dialed, Strand acceptor, core::Address from)
      : side{{dialer, dialed, {}, false, false, {}, nullptr}, {acceptor, from, {}, false, false, {}, nullptr}} {}
  struct Side {
    Strand io;
    core::Address remote;
    core::Bytes buf;      // written by the other side, not yet read
    bool eof = false;     // the other side will write no more
    bool closed = false;  // this side was closed
    asio::mutable_buffer rbuf;
    ByteStream::Handler reading;  // a pending read
  };
  std::mutex mu;
  Side side[2];

  // Completes `s`'s pending read if it can. Caller holds mu.
  static void serve(Side& s) {
    if (!s.reading) return;
    if (!s.buf.empty()) {
      size_t n = std::min(s.rbuf.size(), s.buf.size());
      std::memcpy(s.rbuf.data(), s.buf.data(), n);
      s.buf.erase(s.buf.begin(), s.buf.begin() + static_cast<std::ptrdiff_t>(n));
      asio::post(s.io, [h = std::move(s.reading), n] { h({}, n); });
    } else if (s.eof) {
      asio::post(s.io, [h = std::move(s.reading)] { h(asio::error::eof, 0); });
    } else {
      return;
    }
    s.reading = nullptr;
  }
};

class MemStream final : public ByteStream {
 public:
  // Dialling side, unconnected.
  MemStream(std::shared_ptr<MemNetwork> net, core::Address self, Strand io)
      : net_(std::move(net)), self_(self), io_(io) {}
  // A connected side.
  MemStream(Strand io, std::shared_ptr<Pipe> p, int me) : io_(io), pipe_(std::move(p)), me_(me) {}
  ~MemStream() override { close(); }

  executor_type get_executor() override { return io_; }

  void connect(const core::Address& to, std::function<void(error_code)> done) override {
    auto post = [&](error_code ec) { asio::post(io_, [done, ec] { done(ec); }); };
    if (pipe_ || closed_) return post(asio::error::bad_descriptor);
    std::chrono::milliseconds delay{0};
    if (!net_->pass(self_, to, false, delay)) return post(asio::error::network_unreachable);
    auto peer = net_->find(to);
    if (!peer) return post(asio::error::connection_refused);
    auto p = std::make_shared<Pipe>(io_, to, peer->io, self_);
    std::unique_ptr<ByteStream> accepted = std::make_unique<MemStream>(peer->io, p, 1);
    if (!peer->offer(accepted)) return post(asio::error::connection_refused);
    pipe_ = std::move(p);
    if (delay.count() == 0) return post({});
    timer_ = std::make_shared<asio::steady_timer>(io_, delay);
    timer_->async_wait([done, t = timer_](error_code ec) { done(ec); });
  }

  void read_some(asio::mutable_buffer buf, Handler done) override {
    if (!pipe_) return asio::post(io_, [done] { done(asio::error::bad_descriptor, 0); });
    std::lock_guard<std::mutex> l(pipe_->mu);
    auto& s = pipe_->side[me_];
    if (s.closed) return asio::post(io_, [done] { done(asio::error::bad_descriptor, 0); });
    if (buf.size() == 0) return asio::post(io_, [done] { done({}, 0); });
    s.rbuf = buf;
    s.reading = std::move(done);
    Pipe::serve(s);
  }

  void write_some(asio::const_buffer buf, Handler done) override {
    if (!pipe_) return asio::post(io_, [done] { done(asio::error::bad_descriptor, 0); });
    std::lock_guard<std::mutex> l(pipe_->mu);
    auto& s = pipe_->side[me_];
    auto& peer = pipe_->side[1 - me_];
    if (s.closed) return asio::post(io_, [done] { done(asio::error::bad_descriptor, 0); });
    if (peer.closed || peer.eof) return asio::post(io_, [done] { done(asio::error::broken_pipe, 0); });
    const auto* b = static_cast<const uint8_t*>(buf.data());
    peer.buf.insert(peer.buf.end(), b, b + buf.size());
    Pipe::serve(peer);
    asio::post(io_, [done, n = buf.size()] { done({}, n); });
  }

  void shutdown_send() override {
    if (!pipe_) return;
    std::lock_guard<std::mutex> l(pipe_->mu);
    auto& peer = pipe_->side[1 - me_];
    peer.eof = true;
    Pipe::serve(peer);
  }

  void close() override {
    closed_ = true;
    if (timer_) timer_->cancel();
    if (!pipe_) return;
    std::lock_guard<std::mutex> l(pipe_->mu);
    auto& s = pipe_->side[me_];
    if (s.closed) return;
    s.closed = true;
    s.buf.clear();
    if (s.reading) asio::post(io_, [h = std::move(s.reading)] { h(asio::error::operation_aborted, 0); });
    s.reading = nullptr;
    // The peer reads what we wrote, then eof; its writes fail.
    auto& peer = pipe_->side[1 - me_];
    peer.eof = true;
    if (!peer.closed) Pipe::serve(peer);
  }

  bool remote(core::Address& out) const override {
    if (!pipe_) return false;
    std::lock_guard<std::mutex> l(pipe_->mu);
    if (pipe_->side[me_].closed) return false;
    out = pipe_->side[me_].remote;
    return true;
  }

 private:
  std::shared_ptr<MemNetwork> net_;
  core::Address self_;
  Strand io_;
  std::shared_ptr<Pipe> pipe_;
  int me_ = 0;
  bool closed_ = false;
  std::shared_ptr<asio::steady_timer> timer_;  // a link's delay on connect
};

// What every in-process transport shares: the endpoint's inbox and accept queue.
class EndpointTransport : public Transport {
 public:
  explicit EndpointTransport(std::shared_ptr<MemEndpoint> ep) : ep_(std::move(ep)) {}

  core::Address local_address() const override { return ep_->addr; }
  int packet_fd() const override { return ep_->efd; }
  size_t receive_packet(std::span<uint8_t> buf, core::Address& from, bool& would_block, std::error_code&) override {
    std::lock_guard<std::mutex> l(ep_->mu);
    would_block = ep_->inbox.empty();
    if (would_block) return 0;
    auto d = std::move(ep_->inbox.front());
    ep_->inbox.pop_front();
    if (ep_->inbox.empty()) ep_->unsignal();
    from = d.first;
    size_t n = std::min(buf.size(), d.second.size());  // truncated, as a datagram too big for the buffer
    if (n > 0) std::memcpy(buf.data(), d.second.data(), n);  // an empty datagram has no data()
    return n;
  }
  void accept(std::function<void(error_code, std::unique_ptr<ByteStream>)> done) override {
    std::lock_guard<std::mutex> l(ep_->mu);
    if (ep_->closed) return asio::post(ep_->io, [done] { done(asio::error::operation_aborted, nullptr); });
    if (!ep_->backlog.empty()) {
      auto held = std::make_shared<std::unique_ptr<ByteStream>>(std::move(ep_->backlog.front()));
      ep_->backlog.pop_front();
      return asio::post(ep_->io, [done, held] { done({}, std::move(*held)); });
    }
    ep_->accepting = std::move(done);
  }
  void close() override {
    std::deque<std::unique_ptr<ByteStream>> backlog;
    {
      std::lock_guard<std::mutex> l(ep_->mu);
      if (ep_->closed) return;
      ep_->closed = true;
      ep_->inbox.clear();
      ep_->unsignal();
      if (ep_->accepting) {
        asio::post(ep_->io, [done = std::move(ep_->accepting)] { done(asio::error::operation_aborted, nullptr); });
      }
      ep_->accepting = nullptr;
      backlog.swap(ep_->backlog);
    }
    detach();
    // `backlog` closes its streams here: their dialers read eof.
  }

 protected:
  bool is_closed() {
    std::lock_guard<std::mutex> l(ep_->mu);
    return ep_->closed;
  }
  // After close(): leave the network (called once).
  virtual void detach() {}
  std::shared_ptr<MemEndpoint> ep_;
};

class MemTransport final : public EndpointTransport {
 public:
  MemTransport(std::shared_ptr<MemNetwork> net, std::shared_ptr<MemEndpoint> ep)
      : EndpointTransport(std::move(ep)), net_(std::move(net)) {}
  ~MemTransport() override { close(); }

  std::string describe() const override { return ep_->addr.to_string() + " (in-memory network)"; }

  std::error_code send_packet(std::span<const uint8_t> data, const core::Address& to) override {
    if (is_closed()) return std::make_error_code(std::errc::bad_file_descriptor);
    std::chrono::milliseconds delay{0};
    // Lost on the way, cut, or nobody there: silently, as UDP.
    if (!net_->pass(ep_->addr, to, true, delay)) return {};
    auto peer = net_->find(to);
    if (!peer) return {};
    net_->deliver(std::move(peer), ep_->addr, core::Bytes(data.begin(), data.end()), delay);
    return {};
  }
  std::unique_ptr<ByteStream> new_stream() override { return std::make_unique<MemStream>(net_, ep_->addr, ep_->io); }

 private:
  void detach() override { net_->detach(ep_.get()); }
  std::shared_ptr<MemNetwork> net_;
};

}  // namespace

core::Status parse_network_address(const std::string& text, core::Address& out) {
  std::string name, host;
  uint16_t port = 0;
  auto bad = [&](const char* why) {
    return core::Status::error(core::Errc::invalid, "bad network address '" + text + "': " + why);
  };
  if (auto st = parse_join_address(text, 0, name, host, port); !st.ok()) return bad("expected ip:port");
  if (!name.empty()) return bad("a name prefix is not allowed here");
  if (port == 0) return bad("a port is needed");
  error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec || ip.is_unspecified()) return bad("the host must be a specific IP address");
  out = detail::to_core(ip, port);
  return core::Status::success();
}

// ---- MemNetwork -----------------------------------------------------------------------------

MemNetwork::~MemNetwork() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  delay_cv_.notify_all();
  if (delay_thread_.joinable()) delay_thread_.join();
}

TransportFactory MemNetwork::factory(std::shared_ptr<MemNetwork> net, core::Address addr) {
  return [net, addr](const TransportContext& ctx, core::Status& status) -> std::unique_ptr<Transport> {
    auto ep = std::make_shared<MemEndpoint>(addr, ctx.io);
    if (ep->efd < 0) {
      status = core::Status::error(core::Errc::io, "in-memory network: cannot create an eventfd");
      return nullptr;
    }
    if (!net->attach(ep)) {
      status = core::Status::error(core::Errc::io, "in-memory network: address " + addr.to_string() + " is in use");
      return nullptr;
    }
    status = core::Status::success();
    return std::make_unique<MemTransport>(net, std::move(ep));
  };
}

void MemNetwork::set_default_link(Link l) {
  std::lock_guard<std::mutex> g(mu_);
  default_link_ = l;
}

void MemNetwork::set_link(const core::Address& from, const core::Address& to, Link l) {
  std::lock_guard<std::mutex> g(mu_);
  links_[{from, to}] = l;
}

void MemNetwork::clear_links() {
  std::lock_guard<std::mutex> g(mu_);
  links_.clear();
  default_link_ = Link{};
}

void MemNetwork::partition(const std::vector<core::Address>& a, const std::vector<core::Address>& b) {
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& x : a) {
    for (const auto& y : b) {
      cuts_.insert({x, y});
      cuts_.insert({y, x});
    }
  }
}

void MemNetwork::block(const core::Address& addr, bool blocked) {
  std::lock_guard<std::mutex> g(mu_);
  if (blocked) {
    blocked_.insert(addr);
  } else {
    blocked_.erase(addr);
  }
}

void MemNetwork::heal() {
  std::lock_guard<std::mutex> g(mu_);
  cuts_.clear();
  blocked_.clear();
}

bool MemNetwork::pass(const core::Address& from, const core::Address& to, bool datagram, std::chrono::milliseconds& delay) {
  std::lock_guard<std::mutex> g(mu_);
  if (blocked_.count(from) || blocked_.count(to) || cuts_.count({from, to})) return false;
  auto it = links_.find({from, to});
  const Link& l = it == links_.end() ? default_link_ : it->second;
  if (datagram && l.loss > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < l.loss) return false;
  delay = l.delay;
  return true;
}

std::shared_ptr<MemEndpoint> MemNetwork::find(const core::Address& addr) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = nodes_.find(addr);
  return it == nodes_.end() ? nullptr : it->second.lock();
}

bool MemNetwork::attach(const std::shared_ptr<MemEndpoint>& ep) {
  std::lock_guard<std::mutex> g(mu_);
  auto& slot = nodes_[ep->addr];
  if (slot.lock()) return false;
  slot = ep;
  return true;
}

void MemNetwork::detach(const MemEndpoint* ep) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = nodes_.find(ep->addr);
  if (it == nodes_.end()) return;
  auto cur = it->second.lock();
  if (!cur || cur.get() == ep) nodes_.erase(it);
}

void MemNetwork::deliver(std::shared_ptr<MemEndpoint> to, core::Address from, core::Bytes data, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return to->push(from, std::move(data));
  std::lock_guard<std::mutex> g(mu_);
  if (stop_) return;
  delayed_.emplace(Clock::now() + delay, Delayed{to, from, std::move(data)});
  if (!delay_thread_.joinable()) delay_thread_ = std::thread([this] { run_delays(); });
  delay_cv_.notify_all();
}

void MemNetwork::run_delays() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    if (delayed_.empty()) {
      delay_cv_.wait(l);
      continue;
    }
    auto due = delayed_.begin()->first;
    if (Clock::now() < due) {
      delay_cv_.wait_until(l, due);
      continue;
    }
    auto d = std::move(delayed_.begin()->second);
    delayed_.erase(delayed_.begin());
    l.unlock();
    if (auto to = d.to.lock()) to->push(d.from, std::move(d.data));
    l.lock();
  }
}

// ---- HostLink: the host carries the bytes ------------------------------------------------------

// A stream's incoming side: what the node reads (an inbound message, or the reply the host
// completed an outgoing stream with), under a lock since completions come from any thread.
struct HostLink::Pending {
  explicit Pending(Strand s) : io(s) {}
  Strand io;
  std::mutex mu;
  core::Bytes rx;
  bool eof = false;
  std::string host_error;  // how the host failed an outgoing stream (stream_done), for messages
  error_code err;
  bool closed = false;
  asio::mutable_buffer rbuf;
  ByteStream::Handler reading;

  // Completes the pending read if it can. Caller holds mu.
  void serve() {
    if (!reading) return;
    if (!rx.empty()) {
      size_t n = std::min(rbuf.size(), rx.size());
      std::memcpy(rbuf.data(), rx.data(), n);
      rx.erase(rx.begin(), rx.begin() + static_cast<std::ptrdiff_t>(n));
      asio::post(io, [h = std::move(reading), n] { h({}, n); });
    } else if (err) {
      asio::post(io, [h = std::move(reading), e = err] { h(e, 0); });
    } else if (eof) {
      asio::post(io, [h = std::move(reading)] { h(asio::error::eof, 0); });
    } else {
      return;
    }
    reading = nullptr;
  }
};

namespace {

// One stream over the host: outgoing (dialled: one message out through send_stream, the reply
// in through stream_done) or inbound (one message in through HostLink::stream, the reply out
// through stream_reply).
class HostStream final : public ByteStream {
 public:
  HostStream(std::shared_ptr<HostLink> link, Strand io, bool outbound, core::Address remote, uint64_t token)
      : link_(std::move(link)), io_(io), p_(std::make_shared<HostLink::Pending>(io)), outbound_(outbound),
        remote_(remote), token_(token) {}
  ~HostStream() override { close(); }

  std::shared_ptr<HostLink::Pending> pending() { return p_; }
  executor_type get_executor() override { return io_; }

  void connect(const core::Address& to, std::function<void(error_code)> done) override {
    remote_ = to;
    asio::post(io_, [done] { done({}); });
  }
  void read_some(asio::mutable_buffer buf, Handler done) override {
    std::lock_guard<std::mutex> l(p_->mu);
    if (p_->closed) return asio::post(io_, [done] { done(asio::error::bad_descriptor, 0); });
    if (buf.size() == 0) return asio::post(io_, [done] { done({}, 0); });
    p_->rbuf = buf;
    p_->reading = std::move(done);
    p_->serve();
  }
  void write_some(asio::const_buffer buf, Handler done) override {
    const auto* b = static_cast<const uint8_t*>(buf.data());
    if (!outbound_) {  // the reply, handed to the host at shutdown_send
      if (replied_) return asio::post(io_, [done] { done(asio::error::broken_pipe, 0); });
      reply_.insert(reply_.end(), b, b + buf.size());
      return asio::post(io_, [done, n = buf.size()] { done({}, n); });
    }
    // One message per stream (the runtime writes each in one piece).
    if (sent_) return asio::post(io_, [done] { done(asio::error::operation_not_supported, 0); });
    sent_ = true;
    {
      std::lock_guard<std::mutex> l(link_->mu_);
      token_ = link_->next_token_++;
      link_->outgoing_[token_] = p_;
    }
    if (!link_->cb_.send_stream(remote_, token_, std::span<const uint8_t>(b, buf.size()), expect_reply_)) {
      host_refused_ = true;
      forget();
      return asio::post(io_, [done] { done(asio::error::connection_refused, 0); });
    }
    asio::post(io_, [done, n = buf.size()] { done({}, n); });
  }
  void shutdown_send() override {
    if (!outbound_) reply(true);
  }
  void close() override {
    {
      std::lock_guard<std::mutex> l(p_->mu);
      if (p_->closed) return;
      p_->closed = true;
      if (p_->reading) asio::post(io_, [h = std::move(p_->reading)] { h(asio::error::operation_aborted, 0); });
      p_->reading = nullptr;
    }
    if (outbound_) {
      forget();
    } else {
      reply(false);
    }
  }
  bool remote(core::Address& out) const override {
    out = remote_;
    return true;
  }
  void expect_reply(bool expect) override { expect_reply_ = expect; }
  // The host's failures in its own terms, not a socket's ("connection refused": nothing listens).
  std::optional<core::Status> explain(const char*, error_code ec) const override {
    if (!outbound_) return std::nullopt;
    const std::string to = remote_.to_string();
    if (host_refused_)
      return core::Status::error(core::Errc::io, "the host transport refused to carry the stream to " + to +
                                                     " (its send_stream returned non-zero)");
    std::lock_guard<std::mutex> l(p_->mu);
    if (p_->host_error.empty()) return std::nullopt;
    return core::Status::error(ec == asio::error::timed_out ? core::Errc::timeout : core::Errc::io,
                               "the host transport failed the stream to " + to + ": " + p_->host_error);
  }
  // Refused before anyone saw it: the host was told by the refusal, so no stream_reply.
  void disown() { replied_ = true; }

 private:
  // The inbound stream is over: its reply (or none) to the host, on the io strand and outside
  // every lock of ours.
  void reply(bool has_reply) {
    if (replied_) return;
    replied_ = true;
    auto bytes = has_reply ? std::move(reply_) : core::Bytes{};
    asio::post(io_, [link = link_, token = token_, bytes = std::move(bytes), has_reply] {
      link->cb_.stream_reply(token, bytes, has_reply);
    });
  }
  // An outgoing stream no longer waits for its completion.
  void forget() {
    if (token_ == 0) return;
    std::lock_guard<std::mutex> l(link_->mu_);
    link_->outgoing_.erase(token_);
  }

  std::shared_ptr<HostLink> link_;
  Strand io_;
  std::shared_ptr<HostLink::Pending> p_;
  const bool outbound_;
  core::Address remote_;
  uint64_t token_;
  bool sent_ = false;
  bool expect_reply_ = true;
  bool host_refused_ = false;
  bool replied_ = false;
  core::Bytes reply_;
};

class HostTransport final : public EndpointTransport {
 public:
  HostTransport(std::shared_ptr<HostLink> link, std::shared_ptr<MemEndpoint> ep)
      : EndpointTransport(std::move(ep)), link_(std::move(link)) {}
  ~HostTransport() override { close(); }

  std::string describe() const override { return ep_->addr.to_string() + " (host transport)"; }
  std::error_code send_packet(std::span<const uint8_t> data, const core::Address& to) override {
    if (is_closed()) return std::make_error_code(std::errc::bad_file_descriptor);
    if (!link_->cb_.send_packet(to, data)) return std::make_error_code(std::errc::no_buffer_space);
    return {};
  }
  std::unique_ptr<ByteStream> new_stream() override {
    return std::make_unique<HostStream>(link_, ep_->io, true, core::Address{}, 0);
  }

 private:
  std::shared_ptr<HostLink> link_;
};

}  // namespace

TransportFactory HostLink::factory() {
  auto self = shared_from_this();
  return [self](const TransportContext& ctx, core::Status& status) -> std::unique_ptr<Transport> {
    auto ep = std::make_shared<MemEndpoint>(self->addr_, ctx.io);
    if (ep->efd < 0) {
      status = core::Status::error(core::Errc::io, "host transport: cannot create an eventfd");
      return nullptr;
    }
    std::lock_guard<std::mutex> l(self->mu_);
    if (self->ep_) {
      status = core::Status::error(core::Errc::state, "host transport: already in use by a node");
      return nullptr;
    }
    self->ep_ = ep;
    status = core::Status::success();
    return std::make_unique<HostTransport>(self, std::move(ep));
  };
}

core::Status HostLink::packet(const core::Address& from, std::span<const uint8_t> data) {
  if (data.size() > 65507) return core::Status::error(core::Errc::too_large, "datagram over 65507 bytes");
  std::shared_ptr<MemEndpoint> ep;
  {
    std::lock_guard<std::mutex> l(mu_);
    ep = ep_;
  }
  if (!ep) return core::Status::error(core::Errc::state, "the node is not running");
  {
    std::lock_guard<std::mutex> l(ep->mu);
    if (ep->closed) return core::Status::error(core::Errc::state, "the node is shut down");
  }
  ep->push(from, core::Bytes(data.begin(), data.end()));
  return core::Status::success();
}

core::Status HostLink::stream(const core::Address& from, uint64_t token, std::span<const uint8_t> data) {
  std::shared_ptr<MemEndpoint> ep;
  {
    std::lock_guard<std::mutex> l(mu_);
    ep = ep_;
  }
  if (!ep) return core::Status::error(core::Errc::state, "the node is not running");
  auto hs = std::make_unique<HostStream>(shared_from_this(), ep->io, false, from, token);
  {
    auto p = hs->pending();
    std::lock_guard<std::mutex> l(p->mu);
    p->rx.assign(data.begin(), data.end());
    p->eof = true;
  }
  HostStream* refused = hs.get();
  std::unique_ptr<ByteStream> s = std::move(hs);
  if (!ep->offer(s)) {
    // Closed, or too many streams waiting: the refusal is the host's answer; the stream must
    // not also call stream_reply as it goes.
    refused->disown();
    return core::Status::error(core::Errc::state, "the node is shut down or has too many streams waiting");
  }
  return core::Status::success();
}

core::Status HostLink::stream_done(uint64_t token, const core::Status& transport, std::span<const uint8_t> reply) {
  std::shared_ptr<Pending> p;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = outgoing_.find(token);
    if (it != outgoing_.end()) {
      p = it->second.lock();
      outgoing_.erase(it);
    }
  }
  if (!p) return core::Status::error(core::Errc::not_found, "no stream waits for token " + std::to_string(token));
  std::lock_guard<std::mutex> l(p->mu);
  if (transport.ok()) {
    p->rx.assign(reply.begin(), reply.end());
    p->eof = true;
  } else if (transport.code == core::Errc::rejected) {
    p->eof = true;  // the peer hung up without a word
  } else if (transport.code == core::Errc::timeout) {
    p->err = asio::error::timed_out;
    p->host_error = transport.message;
  } else {
    p->err = asio::error::connection_refused;
    p->host_error = transport.message;
  }
  p->serve();
  return core::Status::success();
}

}  // namespace memberlist::runtime
