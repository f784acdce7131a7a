// Probing (reference §3.3-3.4, the reference's state.go probe loop and net.go ack handling):
// the probe ticker, direct, indirect and TCP fallback probes, acks and nacks, the helper side
// of indirect pings, the ping() command, and the health awareness updates that probes drive.
#include <algorithm>
#include <string>

#include "core/impl.h"

namespace memberlist::core {

void Core::Impl::probe_tick(Instant deadline, Instant now) {
  // Like the reference's ticker channel, which buffers one tick: a tick that arrives while
  // a probe runs starts the next probe as soon as that one ends; further ones are dropped.
  if (probe)
    probe_tick_pending = true;
  else
    run_probe(now);
  expire_recent_broadcasts(now);  // our settled broadcasts' outcomes, within a probe interval
  Instant next = deadline + cfg.probe_interval;
  while (next <= now) next += cfg.probe_interval;
  schedule(next, TimerKind::ProbeTick);
}

void Core::Impl::run_probe(Instant now) {
  size_t checked = 0;
  while (checked < nodes.size()) {
    if (probe_index >= nodes.size()) {
      reset_nodes(now);
      probe_index = 0;
      checked++;
      continue;
    }
    const NodeRec& r = *nodes[probe_index++];
    if (is_self(r) || dead_or_left(r.info.state)) {
      checked++;
      continue;
    }
    probe_node(r.info, now);
    return;
  }
}

void Core::Impl::probe_node(const NodeInfo& node, Instant now) {
  st.probes++;
  Probe p;
  p.interval = awareness.scale_timeout(cfg.probe_interval);
  if (p.interval > cfg.probe_interval) {
    st.degraded_probes++;
    metrics.incr("memberlist.degraded.probe");
  }
  p.seq = ++seq_no;
  p.node = node;
  p.sent = now;
  Ping ping = make_ping(p.seq, node.name);
  if (node.state == NodeState::Alive) {
    send_with_piggyback(node.addr, ping);
  } else {
    // Buddy system: tell the suspect it is suspected so it can refute at once.
    std::vector<Bytes> parts{codec->encode(ping),
                             codec->encode(Suspect{node.incarnation, node.name, cfg.name})};
    send_parts(node.addr, std::move(parts));
  }
  AckHandler h{ProbeAck{}, 0};
  ack_handlers[p.seq] = h;
  p.direct_timer = schedule(now + cfg.probe_timeout, TimerKind::ProbeTimeout, p.seq);
  p.reap_timer = schedule(now + p.interval, TimerKind::ProbeReap, p.seq);
  probe = std::move(p);
}

// No direct ack within probe_timeout: ask helpers, and try TCP.
void Core::Impl::probe_direct_timeout(Instant now) {
  Probe& p = *probe;
  p.direct_timer = 0;
  log(LogLevel::Debug, "Failed UDP ping: " + p.node.name + " (timeout reached)");
  send_indirect(now);
}

void Core::Impl::send_indirect(Instant now) {
  Probe& p = *probe;
  if (p.indirect_sent) return;
  p.indirect_sent = true;
  const std::string target = p.node.name;
  auto helpers = k_random_nodes(cfg.indirect_checks, [&](const NodeRec& r) {
    return is_self(r) || r.info.state != NodeState::Alive || r.info.name == target;
  });
  std::vector<std::pair<Address, bool>> to;  // copied: sending may run delegate hooks
  for (const NodeRec* h : helpers) to.emplace_back(h->info.addr, h->info.vsn.pmax >= 4);
  for (const auto& [addr, nack] : to) {
    // Only helpers speaking protocol 4 send nacks.
    if (nack) p.expected_nacks++;
    send_with_piggyback(addr, IndirectPing{p.seq, p.node.addr, target, nack, cfg.advertise, cfg.name});
  }
  bool tcp_disabled = cfg.disable_tcp_pings ||
                      (cfg.disable_tcp_pings_for_node && cfg.disable_tcp_pings_for_node(target));
  if (!tcp_disabled && p.node.vsn.pmax >= 3) {
    StreamRequest req;
    req.id = ++next_stream_id;
    req.to = p.node.addr;
    req.payload = codec->encode_stream(make_ping(p.seq, target));
    req.expect_reply = true;
    req.deadline = p.sent + p.interval;
    streams[req.id] = PendingStream{PendingStream::TcpPing, false, p.seq, p.node.addr, now};
    p.tcp_stream = req.id;
    stream_requests.push_back(std::move(req));
  }
  (void)now;
}

// The ack handler's lifetime (scaled probe interval) is over.
void Core::Impl::probe_reaped(Instant now) {
  Probe& p = *probe;
  p.reap_timer = 0;
  ack_handlers.erase(p.seq);
  if (!p.indirect_sent) {
    cancel(p.direct_timer);
    send_indirect(now);
  }
  p.acks_timed_out = true;
  if (p.tcp_stream != 0) {
    // The TCP ping's deadline is now; wait for the driver to report it, but not forever.
    p.tcp_wait_timer = schedule(now + cfg.probe_timeout, TimerKind::ProbeTcpWait, p.seq);
    return;
  }
  probe_failed(now);
}

// The TCP fallback ping did not report in time.
void Core::Impl::probe_tcp_wait_over(Instant now) {
  probe->tcp_wait_timer = 0;
  probe->tcp_stream = 0;
  probe_failed(now);
}

void Core::Impl::end_probe(int awareness_delta, Instant now) {
  Probe& p = *probe;
  cancel(p.direct_timer);
  cancel(p.reap_timer);
  cancel(p.tcp_wait_timer);
  ack_handlers.erase(p.seq);
  metrics.observe_ms(probe_timer, ms(now - p.sent));
  probe.reset();
  apply_awareness(awareness_delta);
  if (probe_tick_pending) {
    probe_tick_pending = false;
    run_probe(now);
  }
}

void Core::Impl::probe_failed(Instant now) {
  Probe& p = *probe;
  if (p.tcp_ok) {
    log(LogLevel::Warn, "Was able to connect to " + p.node.name +
                            " over TCP but UDP probes failed, network may be misconfigured");
    end_probe(-1, now);
    return;
  }
  // With nack-capable helpers, missing nacks blame us; without, any failure does.
  int delta = p.expected_nacks > 0 ? std::max(0, p.expected_nacks - p.nacks) : 1;
  NodeInfo node = p.node;
  end_probe(delta, now);
  st.probe_failures++;
  log(LogLevel::Info, "Suspect " + node.name + " has failed, no acks received");
  suspect_node(Suspect{node.incarnation, node.name, cfg.name}, now);
}

void Core::Impl::handle_ack(const Ack& a, Instant now) {
  auto it = ack_handlers.find(a.seq);
  if (it == ack_handlers.end()) {
    bad("unknown_ack");
    return;
  }
  AckHandler h = std::move(it->second);
  ack_handlers.erase(it);
  cancel(h.timer);
  if (std::holds_alternative<ProbeAck>(h.kind)) {
    if (probe && probe->seq == a.seq) {
      // Only acks of the direct phase report a round-trip time, and only to hosts with a
      // delegate (the reference's PingDelegate): drivers that never poll stay bounded.
      if (!probe->indirect_sent && delegate) notifications.push_back(PingComplete{probe->node, now - probe->sent, a.payload});
      end_probe(-1, now);
    }
  } else if (auto* relay = std::get_if<RelayAck>(&h.kind)) {
    // A relayed ack is a datagram this one caused: it counts against the packet's budget.
    if (take_reply()) send_with_piggyback(relay->reply_to, Ack{relay->orig_seq, {}});
  } else if (auto* ping = std::get_if<PingAck>(&h.kind)) {
    ping_results.push_back(PingResult{ping->id, true, now - ping->sent});
  } else if (auto* rc = std::get_if<ReconnectAck>(&h.kind)) {
    reconnect_acked(*rc, now);
  }
}

void Core::Impl::handle_nack(const Nack& n) {
  if (probe && probe->seq == n.seq && ack_handlers.count(n.seq)) {
    probe->nacks++;
    return;
  }
  bad("unknown_nack");
}

void Core::Impl::handle_ping(const Address& from, const Ping& p) {
  if (!p.node.empty() && p.node != cfg.name) {
    bad("wrong_node", LogLevel::Warn, "Got ping for unexpected node '" + p.node + "' from=" + from.to_string());
    return;
  }
  if (!take_reply()) return;
  Ack ack{p.seq, {}};
  if (delegate) {
    ack.payload = hook([](Delegate& d) { return d.ack_payload(); });
    if (ack.payload.size() > max_broadcast_size()) {
      log(LogLevel::Warn, "Ack payload of " + std::to_string(ack.payload.size()) +
                              " bytes does not fit a datagram; sending the ack without it");
      ack.payload.clear();
    }
  }
  send_with_piggyback(p.source.empty() ? from : p.source, ack);
}

void Core::Impl::handle_indirect_ping(const Address& from, const IndirectPing& ind, Instant now) {
  if (!take_reply()) return;
  const Address reply_to = ind.source.empty() ? from : ind.source;
  const uint32_t seq = ++seq_no;
  AckHandler h{RelayAck{ind.seq, reply_to, ind.nack}, 0};
  h.timer = schedule(now + cfg.probe_timeout, TimerKind::IndirectPingTimeout, seq);
  ack_handlers[seq] = std::move(h);
  send_with_piggyback(ind.target, make_ping(seq, ind.node));
}

// No ack for the ping we relayed: tell the prober, if it takes nacks.
void Core::Impl::indirect_ping_timeout(uint32_t seq) {
  auto it = ack_handlers.find(seq);
  if (it == ack_handlers.end()) return;
  RelayAck relay = std::get<RelayAck>(it->second.kind);
  ack_handlers.erase(it);
  if (relay.nack) send_with_piggyback(relay.reply_to, Nack{relay.orig_seq});
}

Status Core::Impl::tcp_ping_done(uint64_t id, const PendingStream& ps, const Status& transport,
                                  std::span<const uint8_t> reply, Instant now) {
  bool ok = false;
  Status result = transport;
  if (transport.ok()) {
    std::vector<Message> msgs;
    Status d = codec->decode_stream(reply, msgs);
    const Ack* ack = (d.ok() && msgs.size() == 1) ? std::get_if<Ack>(&msgs[0]) : nullptr;
    if (ack == nullptr) {
      bad("bad_tcp_ack");
      result = Status::error(Errc::protocol, "unexpected reply to a TCP ping");
    } else if (ack->seq != ps.seq) {
      bad("bad_tcp_ack");
      result = Status::error(Errc::protocol, "sequence number from ack (" + std::to_string(ack->seq) +
                                                 ") doesn't match ping (" + std::to_string(ps.seq) + ")");
    } else {
      ok = true;
    }
  }
  // As in the reference: a node that is down or cut off is what this ping is for, so failing
  // to reach it is no error (DEBUG); a peer that answers with something else than our ack is.
  if (!ok) {
    const bool transport_failed = result.code == Errc::io || result.code == Errc::timeout;
    log(transport_failed ? LogLevel::Debug : LogLevel::Error,
        "Failed fallback TCP ping to " + ps.to.to_string() + ": " + result.message);
  }
  // Only the probe that sent it cares; a late reply after the probe ended is ignored.
  if (probe && probe->tcp_stream == id) {
    probe->tcp_stream = 0;
    probe->tcp_ok = ok;
    if (probe->acks_timed_out) {
      cancel(probe->tcp_wait_timer);
      probe_failed(now);
    }
  }
  return result;
}

uint64_t Core::Impl::ping(const std::string& name, const Address& addr, Instant now) {
  const uint64_t id = ++next_ping_id;
  const uint32_t seq = ++seq_no;
  AckHandler h{PingAck{id, now}, 0};
  h.timer = schedule(now + cfg.probe_timeout, TimerKind::PingTimeout, seq, name);
  ack_handlers[seq] = std::move(h);
  send_with_piggyback(addr, make_ping(seq, name));
  return id;
}

void Core::Impl::ping_timeout(uint32_t seq, const std::string& name) {
  // The handler is there: an ack would have cancelled this timer with it.
  auto it = ack_handlers.find(seq);
  if (it == ack_handlers.end()) return;
  const uint64_t id = std::get<PingAck>(it->second.kind).id;
  ack_handlers.erase(it);
  log(LogLevel::Debug, "Failed UDP ping: " + name + " (timeout reached)");
  ping_results.push_back(PingResult{id, false, {}});
}

}  // namespace memberlist::core
