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
  bool offer(std::unique_ptr<ByteStream> s) {
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
    if (!peer->offer(std::make_unique<MemStream>(peer->io, p, 1))) return post(asio::error::connection_refused);
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

class MemTransport final : public Transport {
 public:
  MemTransport(std::shared_ptr<MemNetwork> net, std::shared_ptr<MemEndpoint> ep) : net_(std::move(net)), ep_(std::move(ep)) {}
  ~MemTransport() override { close(); }

  core::Address local_address() const override { return ep_->addr; }
  std::string describe() const override { return ep_->addr.to_string() + " (in-memory network)"; }

  std::error_code send_packet(std::span<const uint8_t> data, const core::Address& to) override {
    {
      std::lock_guard<std::mutex> l(ep_->mu);
      if (ep_->closed) return std::make_error_code(std::errc::bad_file_descriptor);
    }
    std::chrono::milliseconds delay{0};
    // Lost on the way, cut, or nobody there: silently, as UDP.
    if (!net_->pass(ep_->addr, to, true, delay)) return {};
    auto peer = net_->find(to);
    if (!peer) return {};
    net_->deliver(std::move(peer), ep_->addr, core::Bytes(data.begin(), data.end()), delay);
    return {};
  }
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
    std::memcpy(buf.data(), d.second.data(), n);
    return n;
  }

  std::unique_ptr<ByteStream> new_stream() override { return std::make_unique<MemStream>(net_, ep_->addr, ep_->io); }
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
    net_->detach(ep_.get());
    // `backlog` closes its streams here: their dialers read eof.
  }

 private:
  std::shared_ptr<MemNetwork> net_;
  std::shared_ptr<MemEndpoint> ep_;
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

}  // namespace memberlist::runtime
