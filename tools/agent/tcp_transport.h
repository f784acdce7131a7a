/* tcp_transport: a host transport (ml_transport) that carries a node's datagrams and stream
 * messages over TCP only, with no UDP socket at all: for networks that block UDP. It is the
 * agent's --transport tcp-only, and an example of a host transport written in C (C11 +
 * POSIX threads and sockets).
 *
 * On the wire (the framing of the Go binding's TCPTransport, so the two interoperate):
 * every message is a frame: a kind byte ('P' datagram, 'S' stream message), the sender's
 * advertised address (a length byte, then "ip:port"), a 4-byte big-endian length and the
 * bytes. Datagrams to a peer go over one long-lived connection per peer, in order; each
 * stream message has a connection of its own, which carries back its answer: a byte (1 a
 * reply follows, 0 none), then with a reply its 4-byte length and bytes. The bytes are the
 * library's, already framed and, with a keyring, encrypted: they are carried unchanged.
 *
 * Use:
 *   t = tcp_transport_new(...);                       listens (port 0: any free port)
 *   tcp_transport_ops(t, &ops);
 *   ml_config_set_transport(cfg, &ops, tcp_transport_address(t));
 *   ml_memberlist_create(&ml, ...);
 *   tcp_transport_start(t, ml);                      accepts, hands bytes to ml
 *   ...
 *   ml_memberlist_shutdown(ml);                      the library stops sending
 *   tcp_transport_stop(t);                           no more calls into ml after this
 *   ml_memberlist_destroy(ml);
 *   tcp_transport_free(t);                           t outlives the memberlist
 */
#ifndef MEMBERLIST_AGENT_TCP_TRANSPORT_H
#define MEMBERLIST_AGENT_TCP_TRANSPORT_H

#include <memberlist.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tcp_transport tcp_transport;

typedef struct tcp_transport_stats {
  uint64_t datagrams_sent;      /* written to a peer's connection */
  uint64_t datagrams_dropped;   /* queue full, too many peers, peer unreachable, write failed */
  uint64_t datagrams_received;  /* handed to the library */
  uint64_t streams_sent;        /* outgoing streams answered (a reply or "no reply") */
  uint64_t streams_failed;      /* outgoing streams refused at once, unreachable, timed out */
  uint64_t streams_received;    /* inbound stream messages handed to the library */
  uint64_t connections_refused; /* inbound connections over the limit, closed at once */
  uint64_t bad_frames;          /* garbage, oversized or truncated input: connection closed */
} tcp_transport_stats;

/* Listens on host:port. host is an IPv4 or IPv6 literal (no brackets) other than 0.0.0.0
 * and ::, as it is also the address advertised to peers; port 0 picks a free one.
 * max_stream bounds a stream message or reply (the library's max_stream_size), timeout_ms
 * each connect and stream exchange (its tcp_timeout). NULL on failure, with a message in
 * err. */
tcp_transport *tcp_transport_new(const char *host, uint16_t port, uint32_t max_stream,
                                 uint32_t timeout_ms, char *err, size_t err_cap);
/* The "ip:port" listened on, to pass to ml_config_set_transport. */
const char *tcp_transport_address(const tcp_transport *t);
/* Fills *ops with the transport's functions (user_data is t). */
void tcp_transport_ops(tcp_transport *t, ml_transport *ops);
/* Starts accepting connections and handing what arrives to ml; outgoing streams are refused
 * until then (they need ml to be completed). 0 on success. */
int tcp_transport_start(tcp_transport *t, ml_memberlist *ml);
/* Stops: no call into the memberlist after it returns, every connection is closed and
 * every thread of the transport has ended; its functions refuse everything from then on.
 * Call it before ml_memberlist_destroy. Idempotent. */
void tcp_transport_stop(tcp_transport *t);
/* A snapshot of the counters. */
void tcp_transport_get_stats(tcp_transport *t, tcp_transport_stats *out);
/* The last connection failure ("connect to 10.0.0.2:7946: Connection refused"), "" if
 * none, copied into buf. */
void tcp_transport_last_error(tcp_transport *t, char *buf, size_t cap);
/* Stops if needed and frees; NULL is ignored. After ml_memberlist_destroy. */
void tcp_transport_free(tcp_transport *t);

#endif
