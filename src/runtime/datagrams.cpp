// UDP: reading the socket on the ticker's thread, the handoff queue, sealing and sending;
// and the timer tick, which enters the core the same way a datagram does.
#include <boost/asio/post.hpp>

#include "runtime/state.h"

namespace memberlist::runtime {

namespace {
constexpr size_t kUdpBufferSize = 65536;
// Datagrams handed to the core per turn of the proc strand.
constexpr int kInboxBatch = 64;
// Datagrams read from one socket per readiness report (a ticker serves many nodes).
constexpr int kReadBatch = 16;
}  // namespace

// Seals and sends datagrams from the calling thread; once closing, they are dropped. Sealing
// (encryption, compression) runs outside the transport, which only sends.
void State::send_datagrams(const std::vector<core::Transmit>& tx, const std::vector<bool>& crc, uint64_t batch) {
  auto fr_now = framing();
  core::Bytes sealed;
  for (size_t i = 0; i < tx.size(); ++i) {
    const auto& t = tx[i];
    if (closing) break;
    auto st = hashicorp ? wire::hashicorp::seal_packet(*fr_now, enc_version, i < crc.size() && crc[i], t.payload, sealed)
                        : wire::seal_packet(*fr_now, t.payload, sealed);
    if (!st.ok()) {
      count(st.kind);
      log->warn("cannot seal a datagram to {}: {}", t.to.to_string(), st.message);
      continue;
    }
    // Never blocks: a full send buffer drops the datagram (UDP may lose it anyway) instead
    // of stalling every node sharing this thread.
    if (closing) break;
    if (std::error_code ec = transport->send_packet(sealed, t.to)) {
      ++dropped_sends;
      log->debug("send to {} failed: {}", t.to.to_string(), ec.message());
    } else {
      m_udp_sent += sealed.size();
    }
  }
  sends.done(batch);
}

// Ticker thread: our transport has datagrams. Reads a bounded batch (the descriptor is
// reported again while more wait).
void State::on_readable() {
  auto o = op();
  if (!o) return;
  // One receive buffer for every node: they are all read on this thread. Left
  // uninitialized, so that only the pages datagrams were written to become resident.
  thread_local std::unique_ptr<uint8_t[]> rx_buf(new uint8_t[kUdpBufferSize]);
  const std::span<uint8_t> rx(rx_buf.get(), kUdpBufferSize);
  for (int i = 0; i < kReadBatch; ++i) {
    if (closing) return;
    core::Address from;
    bool would_block = false;
    std::error_code err;
    size_t n = transport->receive_packet(rx, from, would_block, err);
    if (would_block) return;
    if (err) {
      log->debug("udp receive: {}", err.message());
      continue;
    }
    on_datagram(rx.first(n), from);
  }
}

// Ticker thread: the allow-list, opening the frame, then the core: right here when nothing
// is queued before it and the core's lock is free (no hand-off to another thread), else
// through the handoff queue, so that the ticker never waits for a node's lock (a slow
// delegate hook must not stop the sockets from being read).
void State::on_datagram(std::span<const uint8_t> data, const core::Address& from) {
  m_udp_received += data.size();
  if (!allow.allows(from)) {
    refused_source("datagram", from);
    return;
  }
  Inbound d{from, {}};
  auto st = hashicorp ? wire::hashicorp::open_packet(*framing(), data, d.data) : wire::open_packet(*framing(), data, d.data);
  if (!st.ok()) return refused_frame("datagram", from.host_string(), st);
  std::unique_lock<std::mutex> q(inbox_mu);
  if (run_inline && inbox.empty() && !proc_scheduled) {
    std::unique_lock<std::mutex> l(mu, std::try_to_lock);
    if (l.owns_lock()) {
      q.unlock();
      CoreAccess access(this, std::move(l));
      return handle_payload(access, d);
    }
  }
  if (inbox.size() >= opt.handoff_queue_depth) {
    ++handoff_dropped;
    log->debug("handoff queue full ({}), dropping a datagram from {}", inbox.size(), from.host_string());
    return;
  }
  inbox.push_back(std::move(d));
  if (proc_scheduled) return;
  auto o = op();
  if (!o) return;
  proc_scheduled = true;
  asio::post(proc, [this, o] { process_inbox(); });
}

// Hands one opened datagram to the core.
void State::handle_payload(CoreAccess& access, const Inbound& d) {
  enter(access, [&](core::Core& c) { c.handle_packet(d.from, d.data, now()); });
}

// The reference logs a bad checksum at WARN and every other bad frame at ERR.
void State::refused_frame(const char* what, const std::string& from, const wire::FrameStatus& st) {
  uint64_t n = count(st.kind);
  auto level = st.kind == wire::FrameError::bad_crc ? spdlog::level::warn : spdlog::level::err;
  log->log(thinned(n, level), "refused a {} from {}: {} ({} {} so far)", what, from, st.message, n,
           wire::to_string(st.kind));
}

// Counted always; logged at warn for the 1st, 2nd, 4th, 8th... so a flood cannot flood
// the log, at debug otherwise.
void State::refused_source(const char* what, const core::Address& from) {
  uint64_t n = ++refused_sources;
  log->log(thinned(n, spdlog::level::warn), "refused a {} from {}: not in the allowed CIDRs ({} refused so far)", what, from.host_string(), n);
}

// proc strand: hands the queued datagrams to the core, oldest first; a batch at a time, so
// that timer expiries queued behind it are not starved by a flood.
void State::process_inbox() {
  for (int batch = 0;; ++batch) {
    Inbound d;
    {
      std::lock_guard<std::mutex> l(inbox_mu);
      if (inbox.empty() || closing) {
        proc_scheduled = false;
        return;
      }
      if (batch == kInboxBatch) {
        if (auto o = op()) {
          asio::post(proc, [this, o] { process_inbox(); });
        } else {
          proc_scheduled = false;
        }
        return;
      }
      d = std::move(inbox.front());
      inbox.pop_front();
    }
    CoreAccess access(this, mu);
    handle_payload(access, d);
  }
}

// Our slot of the runtime's Ticker came (a ticker thread, running other nodes' slots too):
// run the core's due timers right here if the lock is free, else on the proc strand, so
// that one busy node does not hold up the others.
void State::on_tick() {
  auto o = op();
  if (!o) return;
  auto expire = [this](core::Core& c) {
    // The ticker dropped our entry: forget it so that drain() registers the next one even
    // if it is the same deadline.
    timer_target.reset();
    c.handle_timeout(now());
  };
  if (run_inline) {
    std::unique_lock<std::mutex> l(mu, std::try_to_lock);
    if (l.owns_lock()) {
      CoreAccess access(this, std::move(l));
      return enter(access, expire);
    }
  }
  asio::post(proc, [this, o, expire] { with_core(expire); });
}

}  // namespace memberlist::runtime
