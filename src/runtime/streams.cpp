// TCP: the acceptor, inbound streams (one message in, an optional reply out) and outbound
// streams (connect, one message out, an optional reply in), all on the node's io strand.
#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "runtime/state.h"

namespace memberlist::runtime {

namespace {
// The first bytes of a reply, quoted, for a message about a peer that is not memberlist
// ("HTTP" from a web server).
std::string printable(std::span<const uint8_t> bytes) {
  std::string out = "\"";
  for (uint8_t b : bytes) {
    if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\') {
      out += static_cast<char>(b);
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
    }
  }
  return out + "\"";
}

// Printable ASCII with a first byte of 0x20 or more: as a big-endian stream length, at
// least 512 MiB.
bool looks_like_text(std::span<const uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b >= 0x20 && b < 0x7f; });
}
}  // namespace

// ---- outbound stream ----------------------------------------------------------------------

// connect -> write one sealed message -> [read one reply] -> core.handle_stream_response.
struct OutStream final : Conn, std::enable_shared_from_this<OutStream> {
  OutStream(std::shared_ptr<State> st, Op o, core::StreamRequest r)
      : s(std::move(st)), op(std::move(o)), req(std::move(r)), sock(s->transport->new_stream()), deadline(s->io) {}
  ~OutStream() override { s->conns.erase(this); }

  std::shared_ptr<State> s;
  Op op;
  core::StreamRequest req;
  std::unique_ptr<ByteStream> sock;
  asio::steady_timer deadline;
  core::Bytes out;
  std::array<uint8_t, wire::kStreamHeaderSize> header{};
  core::Bytes body;
  bool done = false;
  bool timed_out = false;
  bool connected = false;  // for the timeout's message: which step ran out of time

  void abort() override { fail(Status::error(Errc::state, "node shut down")); }

  void start() {
    s->conns.insert(this);
    auto self = shared_from_this();
    deadline.expires_at(s->to_time(req.deadline));
    deadline.async_wait([self](error_code ec) {
      if (ec) return;
      self->timed_out = true;
      self->sock->close();  // completes the pending operation with an error
    });
    if (s->hashicorp) {
      // The label header once, then the message (no outer length unless encrypted).
      auto fr = s->framing();
      core::Bytes sealed;
      if (auto st = wire::hashicorp::seal_stream(*fr, s->enc_version, req.payload, sealed); !st.ok()) {
        s->count(st.kind);
        return fail(st);
      }
      out = wire::hashicorp::stream_label_header(*fr);
      out.insert(out.end(), sealed.begin(), sealed.end());
    } else if (auto st = wire::seal_stream_message(*s->framing(), req.payload, out); !st.ok()) {
      s->count(st.kind);
      return fail(st);
    }
    ++s->m_tcp_connect;
    sock->expect_reply(req.expect_reply);
    sock->connect(req.to, [self](error_code ec) {
      if (ec) return self->fail_io("connect", ec);
      self->connected = true;
      self->s->m_tcp_sent += self->out.size();
      asio::async_write(*self->sock, asio::buffer(self->out), [self](error_code ec, size_t) {
        if (ec && self->hung_up(ec)) return self->refused();  // closed at accept: the allow-list
        if (ec) return self->fail_io("write", ec);
        if (!self->req.expect_reply) return self->finish(Status::success());
        if (self->s->hashicorp) return self->read_hc_reply(1);
        self->read_reply();
      });
    });
  }

  void read_reply() {
    auto self = shared_from_this();
    asio::async_read(*sock, asio::buffer(header), [self](error_code ec, size_t n) {
      self->s->m_tcp_received += n;
      if (ec) {
        if (n == 0 && self->hung_up(ec)) return self->refused();
        return self->fail_io("read", ec);
      }
      size_t len = 0;
      auto st = wire::parse_stream_header(*self->s->framing(), self->header, len);
      if (!st.ok()) {
        self->s->count(st.kind);
        // A length of 512 MiB or more whose bytes are text ("HTTP", "SSH-") is another
        // protocol's greeting, not a memberlist reply over our limit.
        if (st.kind == wire::FrameError::too_large && looks_like_text(self->header))
          return self->fail(Status::error(Errc::protocol, "peer " + self->req.to.to_string() +
                                                              " answered with something that is not memberlist "
                                                              "(its reply starts with " +
                                                              printable(self->header) + ")"));
        return self->fail(st);
      }
      // Reserved whole but touched only as bytes arrive, so a header alone costs no memory;
      // growing by doubling instead would copy, and hold up to twice the body meanwhile.
      self->body.reserve(len);
      asio::async_read(*self->sock, asio::dynamic_buffer(self->body, len),
                       asio::transfer_exactly(len), [self](error_code ec, size_t n) {
                         self->s->m_tcp_received += n;
                         if (ec) return self->fail_io("read", ec);
                         self->finish(Status::success());
                       });
    });
  }

  // Hashicorp mode: the reply has no outer length; read until the codec finds a whole
  // message in `body` (at least `want` more bytes first: never more than it needs).
  size_t hc_size = 0;
  void read_hc_reply(size_t want) {
    auto self = shared_from_this();
    const size_t limit = s->framing()->max_stream_message + 64;
    asio::async_read(*sock, asio::dynamic_buffer(body, limit), asio::transfer_at_least(want),
                     [self](error_code ec, size_t n) {
                       self->s->m_tcp_received += n;
                       size_t size = 0, need = 0;
                       auto st = self->s->hc_codec->stream_message_size(self->body, size, need);
                       if (!st.ok()) {
                         self->s->count(st.code == Errc::too_large ? wire::FrameError::too_large
                                                                   : wire::FrameError::malformed);
                         return self->fail(Status::error(st.code, "bad reply from " + self->req.to.to_string() + ": " +
                                                                      st.message));
                       }
                       if (size > 0) {
                         self->hc_size = size;
                         return self->finish(Status::success());
                       }
                       if (ec) {
                         if (self->body.empty() && self->hung_up(ec)) return self->refused();
                         return self->fail_io("read", ec);
                       }
                       self->read_hc_reply(std::max<size_t>(1, need > self->body.size() ? need - self->body.size() : 1));
                     });
  }

  // The peer hung up on us (not our deadline closing the socket).
  bool hung_up(error_code ec) const {
    return !timed_out && (ec == asio::error::eof || ec == asio::error::connection_reset ||
                          ec == asio::error::broken_pipe || ec == asio::error::connection_aborted);
  }
  // The peer took our message (or the connection) and hung up without a word: memberlist
  // does that to a message it refuses, so this is most likely not a network failure.
  void refused() {
    fail(Status::error(Errc::rejected, "peer " + req.to.to_string() +
                                           " closed the connection right after our message: it likely refused it "
                                           "(a different encryption key or label, or our address is not in its "
                                           "allow-list)"));
  }
  void fail_io(const char* what, error_code ec) {
    if (auto st = sock->explain(what, ec); st && !timed_out) return fail(*st);
    if (timed_out) {
      return fail(Status::error(Errc::timeout, "stream to " + req.to.to_string() + " timed out (tcp_timeout) " +
                                                   (connected ? "waiting for its reply" : "connecting")));
    }
    if (ec == asio::error::connection_refused)
      return fail(Status::error(Errc::io, "connection refused by " + req.to.to_string() +
                                              ": nothing listens on that port"));
    fail(Status::error(Errc::io, std::string(what) + " " + req.to.to_string() + ": " + ec.message()));
  }
  void fail(Status st) {
    if (done) return;
    s->log->debug("stream {} to {}: {}", req.id, req.to.to_string(), st.message);
    complete(std::move(st), {});
  }
  void finish(Status transport) {
    if (done) return;
    core::Bytes payload;
    if (req.expect_reply) {
      auto st = s->hashicorp ? wire::hashicorp::open_stream(*s->framing(), std::span(body).first(hc_size), payload)
                             : wire::open_stream_message(*s->framing(), body, payload);
      if (!st.ok()) {
        s->count(st.kind);
        return fail(Status::error(Errc::protocol, "bad reply from " + req.to.to_string() + ": " + st.message));
      }
    }
    complete(std::move(transport), payload);
  }
  void complete(Status transport, std::span<const uint8_t> reply) {
    done = true;
    s->conns.erase(this);
    deadline.cancel();
    sock->close();
    s->stream_done(req.id, transport, reply);
  }
};

void State::start_stream(core::StreamRequest req) {
  auto o = op();
  if (!o) return;
  auto c = std::make_shared<OutStream>(shared_from_this(), std::move(o), std::move(req));
  c->start();
}

void State::stream_done(uint64_t id, const Status& transport, std::span<const uint8_t> reply) {
  with_core([&](core::Core& c) {
    Status r = c.handle_stream_response(id, transport, reply, now());
    if (auto it = joins.find(id); it != joins.end()) it->second = std::move(r);
  });
}

// ---- inbound stream -----------------------------------------------------------------------

// header -> body (deadline tcp_timeout) -> core.handle_stream -> [reply] -> close.
struct InStream final : Conn, std::enable_shared_from_this<InStream> {
  // Counted in State::inbound_conns and inbound_by_source from here on.
  InStream(std::shared_ptr<State> st, Op o, std::unique_ptr<ByteStream> so, std::array<uint8_t, 16> src)
      : s(std::move(st)), op(std::move(o)), sock(std::move(so)), deadline(s->io), source(std::move(src)) {
    ++s->inbound_conns;
    ++s->inbound_by_source[source];
  }
  ~InStream() override {
    s->conns.erase(this);
    --s->inbound_conns;
    if (auto it = s->inbound_by_source.find(source); it != s->inbound_by_source.end() && --it->second == 0)
      s->inbound_by_source.erase(it);
    if (large) {
      --s->large_streams;
      s->large_stream_bytes -= reserved;
    }
  }

  std::shared_ptr<State> s;
  Op op;
  std::unique_ptr<ByteStream> sock;
  asio::steady_timer deadline;
  core::Address from;
  std::array<uint8_t, wire::kStreamHeaderSize> header{};
  core::Bytes body;
  core::Bytes out;
  std::array<uint8_t, 16> source;  // the peer's IP
  bool large = false;  // counted in State::large_streams
  size_t reserved = 0;  // counted in State::large_stream_bytes

  void abort() override { close(); }

  // Counts this stream in the large-stream budgets (max_concurrent_streams,
  // max_inbound_stream_bytes) once its body needs more than kSmallStream bytes, for `total`
  // bytes in all. Native streams know the total from their header; hashicorp streams learn it
  // as they read, so the reservation grows. False (and counted, and logged thinned) if a
  // budget refuses it.
  bool charge(size_t total) {
    if (total <= kSmallStream || total <= reserved) return true;
    auto& st = *s;
    const char* full = !large && st.large_streams >= st.opt.max_concurrent_streams ? "max_concurrent_streams"
                       : st.large_stream_bytes - reserved + total > st.opt.max_inbound_stream_bytes
                           ? "max_inbound_stream_bytes"
                           : nullptr;
    if (full != nullptr) {
      uint64_t n = ++st.refused_streams;
      st.log->log(thinned(n, spdlog::level::warn),
                  "{} reached ({} streams, {} bytes being read), refused one of {} bytes from {} ({} refused so far)",
                  full, st.large_streams, st.large_stream_bytes, total, from.to_string(), n);
      return false;
    }
    if (!large) ++st.large_streams;
    large = true;
    st.large_stream_bytes += total - reserved;
    reserved = total;
    return true;
  }

  void close() {
    s->conns.erase(this);
    deadline.cancel();
    sock->close();
  }

  void start() {
    s->conns.insert(this);
    if (!sock->remote(from)) return close();
    auto self = shared_from_this();
    deadline.expires_after(s->opt.core.tcp_timeout);
    deadline.async_wait([self](error_code ec) {
      if (ec) return;
      self->s->log->debug("stream from {} timed out", self->from.to_string());
      self->sock->close();
    });
    if (s->hashicorp) return read_hc(1);
    asio::async_read(*sock, asio::buffer(header), [self](error_code ec, size_t n) {
      self->s->m_tcp_received += n;
      if (ec) return self->drop("read", ec);
      size_t len = 0;
      auto st = wire::parse_stream_header(*self->s->framing(), self->header, len);
      if (!st.ok()) {
        self->s->refused_frame("stream", self->from.to_string(), st);
        return self->close();
      }
      if (!self->charge(len)) return self->close();
      self->body.reserve(len);  // as for replies above: resident only as bytes arrive
      asio::async_read(*self->sock, asio::dynamic_buffer(self->body, len),
                       asio::transfer_exactly(len), [self](error_code ec, size_t n) {
                         self->s->m_tcp_received += n;
                         if (ec) return self->drop("read", ec);
                         self->handle();
                       });
    });
  }

  // Hashicorp mode: an optional label header, then one message with no outer length; read
  // until the codec finds it whole (at least `want` more bytes first: never more than it
  // needs, as the dialer waits for our reply). The stream budgets apply to what the codec
  // says the message needs, as soon as that passes kSmallStream.
  size_t hc_start = 0;  // label header bytes
  bool hc_label_done = false;
  size_t hc_size = 0;
  void read_hc(size_t want) {
    auto self = shared_from_this();
    const size_t limit = s->framing()->max_stream_message + 2 + wire::kMaxLabelSize;
    asio::async_read(*sock, asio::dynamic_buffer(body, limit), asio::transfer_at_least(want),
                     [self](error_code ec, size_t n) {
                       self->s->m_tcp_received += n;
                       auto& st = *self->s;
                       size_t need = self->body.size() + 1;
                       if (!self->hc_label_done) {
                         bool more = false;
                         auto ls = wire::hashicorp::check_stream_label(*st.framing(), self->body, self->hc_start, more);
                         if (!ls.ok()) {
                           st.refused_frame("stream", self->from.to_string(), ls);
                           return self->close();
                         }
                         self->hc_label_done = !more;
                       }
                       if (self->hc_label_done) {
                         size_t size = 0;
                         auto rest = std::span<const uint8_t>(self->body).subspan(self->hc_start);
                         auto ms = st.hc_codec->stream_message_size(rest, size, need);
                         if (!ms.ok()) {
                           wire::FrameStatus fs;
                           static_cast<Status&>(fs) = ms;
                           fs.kind = ms.code == Errc::too_large ? wire::FrameError::too_large : wire::FrameError::malformed;
                           st.refused_frame("stream", self->from.to_string(), fs);
                           return self->close();
                         }
                         if (size > 0) {
                           self->hc_size = size;
                           return self->handle();
                         }
                         need += self->hc_start;
                         if (!self->charge(need)) return self->close();
                         if (need > self->body.capacity()) self->body.reserve(need);  // no doubling copies
                       }
                       if (ec) return self->drop("read", ec);
                       self->read_hc(need > self->body.size() ? need - self->body.size() : 1);
                     });
  }

  void handle() {
    core::Bytes payload;
    auto fr = s->framing();
    auto st = s->hashicorp ? wire::hashicorp::open_stream(*fr, std::span(body).subspan(hc_start, hc_size), payload)
                           : wire::open_stream_message(*fr, body, payload);
    if (!st.ok()) {
      s->refused_frame("stream message", from.to_string(), st);
      return close();
    }
    auto reply = s->inbound_message(from, payload);
    if (!reply || s->closing) return close();
    if (auto st = s->hashicorp ? wire::hashicorp::seal_stream(*s->framing(), s->enc_version, *reply, out)
                               : wire::seal_stream_message(*s->framing(), *reply, out);
        !st.ok()) {
      s->count(st.kind);
      s->log->warn("cannot seal the reply to {}: {}", from.to_string(), st.message);
      return close();
    }
    auto self = shared_from_this();
    s->m_tcp_sent += out.size();
    asio::async_write(*sock, asio::buffer(out), [self](error_code ec, size_t) {
      if (ec) return self->drop("write", ec);
      self->sock->shutdown_send();
      self->close();
    });
  }

  void drop(const char* what, error_code ec) {
    if (ec != asio::error::operation_aborted && ec != asio::error::eof) {
      s->log->debug("stream from {}: {} failed: {}", from.to_string(), what, ec.message());
    } else if (ec == asio::error::eof) {
      s->log->debug("stream from {}: closed early", from.to_string());
    }
    close();
  }
};

std::optional<core::Bytes> State::inbound_message(const core::Address& from, std::span<const uint8_t> payload) {
  std::optional<core::Bytes> reply;
  with_core([&](core::Core& c) { reply = c.handle_stream(from, payload, now()); });
  return reply;
}

void State::accept() {
  auto o = op();
  if (!o) return;
  transport->accept([this, o](error_code ec, std::unique_ptr<ByteStream> sock) {
    if (closing || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Back off 5 ms doubling to 1 s, as the reference does (e.g. out of descriptors).
      accept_backoff = accept_backoff.count() == 0 ? std::chrono::milliseconds(5)
                                                   : std::min<Duration>(accept_backoff * 2, std::chrono::seconds(1));
      log->warn("accept failed: {} (retrying in {} ms)", ec.message(), accept_backoff.count() / 1000);
      auto o2 = op();
      if (!o2) return;
      backoff_timer.expires_after(accept_backoff);
      backoff_timer.async_wait([this, o2](error_code ec) {
        if (!ec && !closing) accept();
      });
      return;
    }
    accept_backoff = Duration{};
    ++m_tcp_accept;
    core::Address peer;
    if (!sock->remote(peer)) {
      // The peer is already gone.
    } else if (!allow.allows(peer)) {
      refused_source("stream", peer);
    } else {
      auto it = inbound_by_source.find(peer.ip);
      size_t from_source = it == inbound_by_source.end() ? 0 : it->second;
      if (inbound_conns >= opt.max_inbound_connections || from_source >= opt.max_inbound_connections_per_source) {
        uint64_t n = ++refused_streams;
        log->log(thinned(n, spdlog::level::warn),
                 "too many inbound connections ({}, {} from {}), closing a new one ({} refused so far)", inbound_conns,
                 from_source, peer.host_string(), n);
      } else if (auto o2 = op()) {
        std::make_shared<InStream>(shared_from_this(), std::move(o2), std::move(sock), peer.ip)->start();
      }
    }
    if (sock) sock->close();  // refused (an accepted one was moved into its InStream)
    accept();
  });
}

}  // namespace memberlist::runtime
