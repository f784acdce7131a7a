/* tcp_transport: datagrams and stream messages over TCP only (see tcp_transport.h).
 *
 * Threads, all detached except the listener, and counted so that stop can wait for them:
 *   - the listener accepts connections; each gets a reader thread ("serve"), at most
 *     MAX_INBOUND at once;
 *   - each peer we send datagrams to has a writer thread and a queue bounded in bytes; the
 *     writer dials the peer when needed and goes away after IDLE_WRITER_MS without work;
 *   - each outgoing stream message has a thread of its own (at most MAX_OUT_STREAMS): dial,
 *     write, wait for the answer, complete the token.
 * The library's callbacks (send_packet, send_stream, stream_reply) only copy the bytes, queue
 * them or start a thread, and return: they never wait on the network.
 * A thread per connection keeps the example short; a transport for thousands of peers would
 * multiplex them with poll or epoll instead.
 *
 * Every socket is non-blocking and every wait is a poll() with a deadline that also watches
 * a "wake" pipe, written once by tcp_transport_stop: so stop interrupts every wait at once. */
#define _POSIX_C_SOURCE 200809L
#include "tcp_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
  ADDR_MAX = 64,                 /* "ip:port" or "[v6]:port" with its NUL */
  MAX_DATAGRAM = 65507,          /* what ml_memberlist_transport_packet accepts */
  MAX_PEERS = 256,               /* peers with a datagram writer at once */
  PEER_QUEUE_BYTES = 256 * 1024, /* datagrams queued per peer; more are dropped */
  MAX_OUT_STREAMS = 64,          /* outgoing stream messages under way */
  MAX_INBOUND = 256,             /* inbound connections (a peer's datagrams take one) */
  IDLE_WRITER_MS = 30000,        /* a peer's writer with nothing to send closes... */
  IDLE_READER_MS = 60000,        /* ...before the peer's reader gives up on it */
  FRAME_SLACK = 4096,            /* framing the library adds around max_stream_size */
  THREAD_STACK = 256 * 1024
};

typedef enum { IO_OK, IO_EOF, IO_TIMEOUT, IO_ERR, IO_STOP } io_result;

/* One encoded frame, queued for a peer's writer or a stream's sender. */
typedef struct frame {
  struct frame *next;
  size_t len;
  uint8_t bytes[];
} frame;

/* A peer we send datagrams to: its queue and its writer thread. */
typedef struct peer {
  struct peer *next;
  tcp_transport *t;
  char addr[ADDR_MAX];
  frame *head, *tail;
  size_t queued;     /* bytes in the queue */
  pthread_cond_t cv; /* a frame was queued, or stop */
} peer;

/* An outgoing stream message, owned by its sender thread. */
typedef struct out_stream {
  tcp_transport *t;
  uint64_t token;
  char to[ADDR_MAX];
  frame *f;
} out_stream;

/* An inbound stream message waiting for the library's answer (lives on its reader's stack). */
typedef struct waiter {
  struct waiter *next;
  uint64_t token;
  int answered, has_reply;
  uint8_t *reply;
  size_t len;
} waiter;

/* An accepted connection, owned by its reader thread. */
typedef struct conn {
  tcp_transport *t;
  int fd;
} conn;

struct tcp_transport {
  pthread_mutex_t mu; /* everything below that changes */
  pthread_cond_t cv;  /* threads reached 0, or a waiter was answered, or stop */
  int listen_fd;
  int wake[2];        /* written once by stop; every poll watches wake[0] */
  char self[ADDR_MAX];
  uint32_t max_frame, timeout_ms;
  ml_memberlist *ml;  /* NULL until start */
  int stopping;
  int listening;      /* the listener thread runs (joined by stop) */
  pthread_t listener;
  int threads;        /* detached threads running */
  int out_streams, inbound, npeers;
  peer *peers;
  waiter *waiters;
  uint64_t next_token;
  tcp_transport_stats stats;
  char last_error[160];
};

/* ---- time, addresses, threads ----------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on cv (which uses CLOCK_MONOTONIC) until deadline_ms; ETIMEDOUT once past it. */
static int wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms) {
  struct timespec ts;
  ts.tv_sec = (time_t)(deadline_ms / 1000);
  ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
  return pthread_cond_timedwait(cv, mu, &ts);
}

static int init_cond(pthread_cond_t *cv) {
  pthread_condattr_t a;
  int rc;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  rc = pthread_cond_init(cv, &a);
  pthread_condattr_destroy(&a);
  return rc;
}

/* "ip:port" or "[v6]:port" into a socket address; 0 if malformed. */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len) {
  char host[ADDR_MAX];
  const char *port_text;
  size_t hlen;
  char *end;
  long port;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') return 0;
    hlen = (size_t)(close - s - 1);
    if (hlen >= sizeof host) return 0;
    memcpy(host, s + 1, hlen);
    port_text = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (!colon) return 0;
    hlen = (size_t)(colon - s);
    if (hlen >= sizeof host) return 0;
    memcpy(host, s, hlen);
    port_text = colon + 1;
  }
  host[hlen] = '\0';
  errno = 0;
  port = strtol(port_text, &end, 10);
  if (errno || *end || end == port_text || port < 1 || port > 65535) return 0;
  memset(ss, 0, sizeof *ss);
  if (s[0] != '[') {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return 0;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return 0;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *len = sizeof *a;
  }
  return 1;
}

static void set_last_error(tcp_transport *t, const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&t->mu);
  va_start(ap, fmt);
  vsnprintf(t->last_error, sizeof t->last_error, fmt, ap);
  va_end(ap);
  pthread_mutex_unlock(&t->mu);
}

/* Starts a detached thread counted in t->threads. Call with t->mu held (so the thread
 * cannot count itself out before it is counted in). 0 on success. */
static int spawn(tcp_transport *t, void *(*fn)(void *), void *arg) {
  pthread_attr_t a;
  pthread_t id;
  int rc;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&a, THREAD_STACK);
  rc = pthread_create(&id, &a, fn, arg);
  pthread_attr_destroy(&a);
  if (rc == 0) t->threads++;
  return rc;
}

/* The last thing a detached thread does with t. */
static void thread_done(tcp_transport *t) {
  pthread_mutex_lock(&t->mu);
  if (--t->threads == 0) pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

/* ---- socket I/O with deadlines ---------------------------------------------------------- */

/* Waits until fd is ready for `events`, the deadline passes or stop wakes everyone. */
static io_result wait_fd(tcp_transport *t, int fd, short events, int64_t deadline) {
  for (;;) {
    struct pollfd p[2];
    int64_t left = deadline - now_ms();
    int n;
    if (left <= 0) return IO_TIMEOUT;
    p[0].fd = fd;
    p[0].events = events;
    p[0].revents = 0;
    p[1].fd = t->wake[0];
    p[1].events = POLLIN;
    p[1].revents = 0;
    n = poll(p, 2, left > INT_MAX ? INT_MAX : (int)left);
    if (n < 0 && errno != EINTR) return IO_ERR;
    if (n <= 0) continue;
    if (p[1].revents) return IO_STOP;
    if (p[0].revents) return IO_OK; /* ready, or an error the next call reports */
  }
}

static io_result read_full(tcp_transport *t, int fd, void *buf, size_t n, int64_t deadline) {
  uint8_t *p = (uint8_t *)buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, p + got, n - got, 0);
    if (r > 0) {
      got += (size_t)r;
    } else if (r == 0) {
      return IO_EOF;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      io_result w = wait_fd(t, fd, POLLIN, deadline);
      if (w != IO_OK) return w;
    } else if (errno != EINTR) {
      return IO_ERR;
    }
  }
  return IO_OK;
}

static io_result write_all(tcp_transport *t, int fd, const void *buf, size_t n, int64_t deadline) {
  const uint8_t *p = (const uint8_t *)buf;
  size_t done = 0;
  while (done < n) {
    ssize_t r = send(fd, p + done, n - done, MSG_NOSIGNAL); /* a closed peer is EPIPE, not SIGPIPE */
    if (r >= 0) {
      done += (size_t)r;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      io_result w = wait_fd(t, fd, POLLOUT, deadline);
      if (w != IO_OK) return w;
    } else if (errno != EINTR) {
      return IO_ERR;
    }
  }
  return IO_OK;
}

static int set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  int one = 1;
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
  /* Small datagrams (probes, acks) go out at once rather than waiting for Nagle. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return 0;
}

/* Connects to "ip:port" by the deadline; the socket, or -1 with *why set (IO_TIMEOUT when
 * the deadline passed) and last_error recorded. */
static int dial(tcp_transport *t, const char *to, int64_t deadline, io_result *why) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  int fd, err = 0;
  socklen_t elen = sizeof err;
  io_result w;
  *why = IO_ERR;
  if (!parse_addr(to, &ss, &len)) {
    set_last_error(t, "connect to %s: not an ip:port address", to);
    return -1;
  }
  fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0 || set_nonblocking(fd) < 0) {
    set_last_error(t, "connect to %s: socket: %s", to, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (connect(fd, (struct sockaddr *)&ss, len) == 0) return fd;
  if (errno != EINPROGRESS) {
    set_last_error(t, "connect to %s: %s", to, strerror(errno));
    close(fd);
    return -1;
  }
  w = wait_fd(t, fd, POLLOUT, deadline);
  if (w == IO_OK && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0) return fd;
  if (w == IO_OK)
    set_last_error(t, "connect to %s: %s", to, strerror(err ? err : errno));
  else if (w == IO_TIMEOUT)
    set_last_error(t, "connect to %s: timed out", to);
  *why = w == IO_OK ? IO_ERR : w;
  close(fd);
  return -1;
}

/* ---- frames ------------------------------------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* kind, our address (length byte + text), the body's length and the body. */
static frame *make_frame(const tcp_transport *t, uint8_t kind, const uint8_t *data, size_t len) {
  size_t alen = strlen(t->self);
  frame *f = (frame *)malloc(sizeof *f + 6 + alen + len);
  if (!f) return NULL;
  f->next = NULL;
  f->len = 6 + alen + len;
  f->bytes[0] = kind;
  f->bytes[1] = (uint8_t)alen;
  memcpy(f->bytes + 2, t->self, alen);
  put_be32(f->bytes + 2 + alen, (uint32_t)len);
  if (len) memcpy(f->bytes + 6 + alen, data, len);
  return f;
}

/* A 4-byte length, then that many bytes (at most max) into *out (malloc'd, NULL if empty).
 * The buffer grows with what arrives, not with what the length claims: a peer that
 * announces 20 MiB and sends nothing costs nothing. IO_ERR over the limit. */
static io_result read_body(tcp_transport *t, int fd, uint32_t max, int64_t deadline,
                           uint8_t **out, size_t *out_len) {
  uint8_t hdr[4];
  uint8_t *buf = NULL;
  size_t size, got = 0, cap = 0;
  io_result r = read_full(t, fd, hdr, 4, deadline);
  *out = NULL;
  *out_len = 0;
  if (r != IO_OK) return r;
  size = get_be32(hdr);
  if (size > max) return IO_ERR;
  while (got < size) {
    size_t chunk = size - got < 65536 ? size - got : 65536;
    if (got + chunk > cap) {
      size_t want = cap * 2 > got + chunk ? cap * 2 : got + chunk;
      uint8_t *grown = (uint8_t *)realloc(buf, want < size ? want : size);
      if (!grown) {
        free(buf);
        return IO_ERR;
      }
      buf = grown;
      cap = want < size ? want : size;
    }
    r = read_full(t, fd, buf + got, chunk, deadline);
    if (r != IO_OK) {
      free(buf);
      return r;
    }
    got += chunk;
  }
  *out = buf;
  *out_len = size;
  return IO_OK;
}

/* One inbound frame. The first byte may take until idle_deadline (IO_TIMEOUT past it;
 * IO_EOF when the peer closed or reset the connection between frames); the rest must follow
 * within timeout_ms, and anything wrong after the first byte (truncated, malformed, over a
 * limit, too slow) is IO_ERR. */
static io_result read_frame(tcp_transport *t, int fd, int64_t idle_deadline, uint8_t *kind,
                            char from[ADDR_MAX], uint8_t **body, size_t *len) {
  int64_t deadline;
  uint8_t alen;
  io_result r = read_full(t, fd, kind, 1, idle_deadline);
  if (r == IO_ERR) return IO_EOF; /* a reset between frames: a peer gone, not garbage */
  if (r != IO_OK) return r;
  if (*kind != 'P' && *kind != 'S') return IO_ERR;
  deadline = now_ms() + t->timeout_ms;
  r = read_full(t, fd, &alen, 1, deadline);
  if (r == IO_OK && (alen == 0 || alen >= ADDR_MAX)) r = IO_ERR;
  if (r == IO_OK) r = read_full(t, fd, from, alen, deadline);
  if (r == IO_OK) {
    from[alen] = '\0';
    r = read_body(t, fd, *kind == 'P' ? MAX_DATAGRAM : t->max_frame, deadline, body, len);
  }
  return r == IO_OK || r == IO_STOP ? r : IO_ERR;
}

/* ---- datagrams out: one queue and writer per peer ----------------------------------------- */

/* Whether the peer closed our connection (it never sends on it, so readable means EOF or a
 * reset): then we dial again rather than lose the next datagram to a dead socket. */
static int peer_closed(int fd) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 0) > 0;
}

static void *peer_writer(void *arg) {
  peer *p = (peer *)arg;
  tcp_transport *t = p->t;
  peer **link;
  int fd = -1;
  pthread_mutex_lock(&t->mu);
  for (;;) {
    frame *f;
    io_result why = IO_OK;
    int64_t idle_deadline = now_ms() + IDLE_WRITER_MS;
    int sent;
    while (!p->head && !t->stopping && wait_until(&p->cv, &t->mu, idle_deadline) != ETIMEDOUT) {
    }
    if (t->stopping || !p->head) break; /* stop, or idle: the next datagram starts a writer */
    f = p->head;
    p->head = f->next;
    if (!p->head) p->tail = NULL;
    p->queued -= f->len;
    pthread_mutex_unlock(&t->mu);

    if (fd >= 0 && peer_closed(fd)) {
      close(fd);
      fd = -1;
    }
    if (fd < 0) fd = dial(t, p->addr, now_ms() + t->timeout_ms, &why);
    sent = fd >= 0 && write_all(t, fd, f->bytes, f->len, now_ms() + t->timeout_ms) == IO_OK;
    if (!sent && fd >= 0) {
      close(fd);
      fd = -1;
    }
    free(f);

    pthread_mutex_lock(&t->mu);
    if (sent)
      t->stats.datagrams_sent++;
    else
      t->stats.datagrams_dropped++; /* lost, as a datagram may be */
  }
  /* Still under the lock that saw the queue empty (or stop): send_packet has not queued onto
   * this peer since, and the next datagram to it starts a new writer. Frames left at stop
   * are dropped. */
  for (link = &t->peers; *link != p; link = &(*link)->next) {
  }
  *link = p->next;
  t->npeers--;
  while (p->head) {
    frame *f = p->head;
    p->head = f->next;
    t->stats.datagrams_dropped++;
    free(f);
  }
  pthread_mutex_unlock(&t->mu);
  if (fd >= 0) close(fd);
  pthread_cond_destroy(&p->cv);
  free(p);
  thread_done(t);
  return NULL;
}

/* ml_transport.send_packet: queue the datagram for the peer's writer and return. */
static int32_t tt_send_packet(void *ud, const char *to, const uint8_t *data, size_t len) {
  tcp_transport *t = (tcp_transport *)ud;
  frame *f = NULL;
  peer *p = NULL;
  if (len <= MAX_DATAGRAM && strlen(to) < ADDR_MAX) f = make_frame(t, 'P', data, len);
  pthread_mutex_lock(&t->mu);
  if (!f || t->stopping) goto drop;
  for (p = t->peers; p && strcmp(p->addr, to) != 0; p = p->next) {
  }
  if (!p) {
    if (t->npeers >= MAX_PEERS || !(p = (peer *)calloc(1, sizeof *p))) goto drop;
    p->t = t;
    snprintf(p->addr, sizeof p->addr, "%s", to);
    if (init_cond(&p->cv) != 0) {
      free(p);
      goto drop;
    }
    if (spawn(t, peer_writer, p) != 0) {
      pthread_cond_destroy(&p->cv);
      free(p);
      goto drop;
    }
    p->next = t->peers;
    t->peers = p;
    t->npeers++;
  }
  if (p->queued + f->len > PEER_QUEUE_BYTES) goto drop;
  if (p->tail)
    p->tail->next = f;
  else
    p->head = f;
  p->tail = f;
  p->queued += f->len;
  /* broadcast, not signal: one waiter anyway, and it avoids glibc's lost wake-up (bug 25847) */
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&t->mu);
  return 0;
drop:
  t->stats.datagrams_dropped++;
  pthread_mutex_unlock(&t->mu);
  free(f);
  return 1;
}

/* ---- streams out: a thread per message ---------------------------------------------------- */

static ml_status status_of(io_result r) {
  return r == IO_TIMEOUT ? ML_E_TIMEOUT : ML_E_IO;
}

static void *stream_sender(void *arg) {
  out_stream *s = (out_stream *)arg;
  tcp_transport *t = s->t;
  int64_t deadline = now_ms() + t->timeout_ms;
  ml_status status;
  uint8_t *reply = NULL;
  size_t len = 0;
  ml_memberlist *ml = NULL;
  io_result r;
  int fd = dial(t, s->to, deadline, &r);
  if (fd < 0) {
    status = status_of(r);
  } else {
    uint8_t mark = 0;
    r = write_all(t, fd, s->f->bytes, s->f->len, deadline);
    if (r == IO_OK) r = read_full(t, fd, &mark, 1, deadline);
    if (r == IO_OK && mark == 1) {
      r = read_body(t, fd, t->max_frame, deadline, &reply, &len);
      status = r == IO_OK ? ML_OK : status_of(r);
    } else if ((r == IO_OK && mark == 0) || r == IO_EOF) {
      /* "no reply", or closed right after our message (as a socket peer that refuses it) */
      status = ML_E_REJECTED;
    } else {
      status = r == IO_OK ? ML_E_IO /* a mark that is neither */ : status_of(r);
    }
    close(fd);
  }
  free(s->f);

  pthread_mutex_lock(&t->mu);
  t->out_streams--;
  if (status == ML_OK || status == ML_E_REJECTED)
    t->stats.streams_sent++;
  else
    t->stats.streams_failed++;
  if (!t->stopping) ml = t->ml; /* stop waits for this thread before the memberlist goes */
  pthread_mutex_unlock(&t->mu);
  /* The token is completed exactly once, here (a token the library gave up on is a harmless
   * ML_E_NOT_FOUND); after stop the tokens are void and the library is not called. */
  if (ml) (void)ml_memberlist_transport_stream_done(ml, s->token, status, reply, len);
  free(reply);
  free(s);
  thread_done(t);
  return NULL;
}

/* ml_transport.send_stream: hand the message to a thread of its own and return. Non-zero
 * (the stream fails at once, its token is not completed) when over the limits. */
static int32_t tt_send_stream(void *ud, const char *to, uint64_t token, const uint8_t *data,
                              size_t len) {
  tcp_transport *t = (tcp_transport *)ud;
  out_stream *s = NULL;
  if (strlen(to) < ADDR_MAX && len <= t->max_frame && (s = (out_stream *)malloc(sizeof *s))) {
    s->t = t;
    s->token = token;
    snprintf(s->to, sizeof s->to, "%s", to);
    s->f = make_frame(t, 'S', data, len);
  }
  pthread_mutex_lock(&t->mu);
  if (!s || !s->f || t->stopping || !t->ml || t->out_streams >= MAX_OUT_STREAMS ||
      spawn(t, stream_sender, s) != 0) {
    t->stats.streams_failed++;
    pthread_mutex_unlock(&t->mu);
    if (s) free(s->f);
    free(s);
    return 1;
  }
  t->out_streams++;
  pthread_mutex_unlock(&t->mu);
  return 0;
}

/* ---- inbound: the listener and a reader per connection ------------------------------------ */

/* ml_transport.stream_reply: give the answer to the reader waiting for it; it writes it. */
static void tt_stream_reply(void *ud, uint64_t token, const uint8_t *reply, size_t len,
                            uint32_t has_reply) {
  tcp_transport *t = (tcp_transport *)ud;
  waiter *w;
  pthread_mutex_lock(&t->mu);
  for (w = t->waiters; w; w = w->next) {
    if (w->token != token || w->answered) continue;
    w->answered = 1;
    if (has_reply && (w->reply = (uint8_t *)malloc(len ? len : 1)) != NULL) {
      if (len) memcpy(w->reply, reply, len);
      w->len = len;
      w->has_reply = 1;
    } /* else (or out of memory): the peer gets "no reply" */
    pthread_cond_broadcast(&t->cv);
    break;
  } /* not found: the reader gave up (stop): nothing to do */
  pthread_mutex_unlock(&t->mu);
}

/* An inbound stream message: hand it to the library, wait for its answer, send it back. */
static void answer_stream(tcp_transport *t, int fd, ml_memberlist *ml, const char *from,
                          const uint8_t *body, size_t len) {
  waiter w, **link;
  ml_status s;
  uint8_t hdr[5];
  int64_t deadline;
  memset(&w, 0, sizeof w);
  pthread_mutex_lock(&t->mu);
  w.token = ++t->next_token;
  w.next = t->waiters; /* listed before the library can answer, from any thread */
  t->waiters = &w;
  pthread_mutex_unlock(&t->mu);

  s = ml_memberlist_transport_stream(ml, from, w.token, body, len);

  pthread_mutex_lock(&t->mu);
  if (s == ML_OK) {
    t->stats.streams_received++;
    /* The library answers exactly once; the deadline only bounds this thread should it be
     * slower than the dialer is willing to wait anyway. */
    deadline = now_ms() + 2 * (int64_t)t->timeout_ms + 1000;
    while (!w.answered && !t->stopping && wait_until(&t->cv, &t->mu, deadline) != ETIMEDOUT) {
    }
  } else {
    t->stats.bad_frames += s == ML_E_INVALID; /* a sender address that is not ip:port */
  }
  for (link = &t->waiters; *link != &w; link = &(*link)->next) {
  }
  *link = w.next;
  pthread_mutex_unlock(&t->mu);

  /* Refused by the library, or no reply: the 0 mark (the dialer completes its token with
   * ML_E_REJECTED). */
  deadline = now_ms() + t->timeout_ms;
  hdr[0] = w.has_reply ? 1 : 0;
  if (!w.has_reply) {
    (void)write_all(t, fd, hdr, 1, deadline);
  } else {
    put_be32(hdr + 1, (uint32_t)w.len);
    if (write_all(t, fd, hdr, 5, deadline) == IO_OK)
      (void)write_all(t, fd, w.reply, w.len, deadline);
  }
  free(w.reply);
}

/* Reads a connection's frames: datagrams until it closes, or one stream message whose
 * connection then carries the answer. */
static void *serve(void *arg) {
  conn *c = (conn *)arg;
  tcp_transport *t = c->t;
  /* A connection that says nothing within timeout_ms is closed: idle connections would
   * otherwise hold the MAX_INBOUND slots (and keep peers' datagrams out) for IDLE_READER_MS. */
  int64_t idle_ms = t->timeout_ms;
  for (;;) {
    uint8_t kind = 0, *body = NULL;
    size_t len = 0;
    char from[ADDR_MAX];
    ml_memberlist *ml;
    io_result r = read_frame(t, c->fd, now_ms() + idle_ms, &kind, from, &body, &len);
    idle_ms = IDLE_READER_MS; /* between a peer's datagrams */
    pthread_mutex_lock(&t->mu);
    t->stats.bad_frames += r == IO_ERR;
    ml = r == IO_OK && !t->stopping ? t->ml : NULL;
    pthread_mutex_unlock(&t->mu);
    if (!ml) { /* closed, idle, garbage, or stop */
      free(body);
      break;
    }
    if (kind == 'S') {
      answer_stream(t, c->fd, ml, from, body, len);
      free(body);
      break;
    }
    {
      ml_status s = ml_memberlist_transport_packet(ml, from, body, len);
      free(body);
      pthread_mutex_lock(&t->mu);
      if (s == ML_OK) t->stats.datagrams_received++;
      t->stats.bad_frames += s == ML_E_INVALID;
      pthread_mutex_unlock(&t->mu);
      if (s == ML_E_INVALID || s == ML_E_CLOSED) break; /* a garbage sender address, or shut down */
    }
  }
  close(c->fd);
  pthread_mutex_lock(&t->mu);
  t->inbound--;
  pthread_mutex_unlock(&t->mu);
  free(c);
  thread_done(t);
  return NULL;
}

static void *listener(void *arg) {
  tcp_transport *t = (tcp_transport *)arg;
  for (;;) {
    io_result w = wait_fd(t, t->listen_fd, POLLIN, INT64_MAX);
    int fd;
    conn *c;
    if (w == IO_STOP) break;
    fd = accept(t->listen_fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        /* out of descriptors: pause rather than spin on a connection we cannot take */
        if (wait_fd(t, t->wake[0], 0, now_ms() + 100) == IO_STOP) break;
      }
      continue;
    }
    c = (conn *)malloc(sizeof *c);
    if (c) {
      c->t = t;
      c->fd = fd;
    }
    pthread_mutex_lock(&t->mu);
    if (!c || set_nonblocking(fd) < 0 || t->stopping || t->inbound >= MAX_INBOUND ||
        spawn(t, serve, c) != 0) {
      t->stats.connections_refused++;
      pthread_mutex_unlock(&t->mu);
      close(fd);
      free(c);
      continue;
    }
    t->inbound++;
    pthread_mutex_unlock(&t->mu);
  }
  return NULL;
}

/* ---- the public functions ----------------------------------------------------------------- */

tcp_transport *tcp_transport_new(const char *host, uint16_t port, uint32_t max_stream,
                                 uint32_t timeout_ms, char *err, size_t err_cap) {
  struct sockaddr_storage ss;
  socklen_t len;
  char text[INET6_ADDRSTRLEN];
  int one = 1;
  tcp_transport *t;
  memset(&ss, 0, sizeof ss);
  if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    len = sizeof *a;
    if (a->sin_addr.s_addr == htonl(INADDR_ANY)) goto unspecified;
  } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    len = sizeof *a;
    if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) goto unspecified;
  } else {
    snprintf(err, err_cap, "%s is not an IPv4 or IPv6 literal", host);
    return NULL;
  }
  if (!(t = (tcp_transport *)calloc(1, sizeof *t))) {
    snprintf(err, err_cap, "out of memory");
    return NULL;
  }
  t->wake[0] = t->wake[1] = -1;
  t->max_frame = max_stream > UINT32_MAX - FRAME_SLACK ? UINT32_MAX : max_stream + FRAME_SLACK;
  t->timeout_ms = timeout_ms;
  pthread_mutex_init(&t->mu, NULL);
  init_cond(&t->cv);
  t->listen_fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (t->listen_fd < 0 || pipe(t->wake) != 0 ||
      /* rebinding the port of a process just gone (its connections in TIME_WAIT) */
      setsockopt(t->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(t->listen_fd, (struct sockaddr *)&ss, len) != 0 || listen(t->listen_fd, 128) != 0 ||
      getsockname(t->listen_fd, (struct sockaddr *)&ss, &len) != 0 ||
      fcntl(t->listen_fd, F_SETFL, O_NONBLOCK) != 0) {
    snprintf(err, err_cap, "listen on %s port %u: %s", host, (unsigned)port, strerror(errno));
    tcp_transport_free(t);
    return NULL;
  }
  (void)fcntl(t->listen_fd, F_SETFD, FD_CLOEXEC);
  (void)fcntl(t->wake[0], F_SETFD, FD_CLOEXEC);
  (void)fcntl(t->wake[1], F_SETFD, FD_CLOEXEC);
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    snprintf(t->self, sizeof t->self, "%s:%u", text, (unsigned)ntohs(a->sin_port));
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    snprintf(t->self, sizeof t->self, "[%s]:%u", text, (unsigned)ntohs(a->sin6_port));
  }
  return t;
unspecified:
  snprintf(err, err_cap,
           "%s is not a specific address: peers dial the address listened on, so it must "
           "be one of this host's IPs",
           host);
  return NULL;
}

const char *tcp_transport_address(const tcp_transport *t) { return t->self; }

void tcp_transport_ops(tcp_transport *t, ml_transport *ops) {
  /* send_stream_flags (version 2, "does the library wait for a reply?") stays NULL: every
   * stream here waits for the peer's answer mark, which the peer always sends, so a message
   * that needs no reply costs one byte back and is completed harmlessly (ML_E_NOT_FOUND). */
  memset(ops, 0, sizeof *ops);
  ops->version = ML_TRANSPORT_VERSION;
  ops->user_data = t;
  ops->send_packet = tt_send_packet;
  ops->send_stream = tt_send_stream;
  ops->stream_reply = tt_stream_reply;
}

int tcp_transport_start(tcp_transport *t, ml_memberlist *ml) {
  int rc;
  pthread_mutex_lock(&t->mu);
  if (t->stopping || t->listening) {
    pthread_mutex_unlock(&t->mu);
    return -1;
  }
  t->ml = ml;
  rc = pthread_create(&t->listener, NULL, listener, t);
  t->listening = rc == 0;
  pthread_mutex_unlock(&t->mu);
  return rc;
}

void tcp_transport_stop(tcp_transport *t) {
  peer *p;
  pthread_mutex_lock(&t->mu);
  if (t->stopping) {
    pthread_mutex_unlock(&t->mu);
    return;
  }
  t->stopping = 1;
  for (p = t->peers; p; p = p->next) pthread_cond_broadcast(&p->cv);
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  /* Wakes every poll, now and later: nothing reads the pipe. */
  if (t->wake[1] >= 0) (void)!write(t->wake[1], "x", 1);
  if (t->listening) pthread_join(t->listener, NULL);
  pthread_mutex_lock(&t->mu);
  while (t->threads > 0) pthread_cond_wait(&t->cv, &t->mu);
  t->ml = NULL;
  pthread_mutex_unlock(&t->mu);
}

void tcp_transport_get_stats(tcp_transport *t, tcp_transport_stats *out) {
  pthread_mutex_lock(&t->mu);
  *out = t->stats;
  pthread_mutex_unlock(&t->mu);
}

void tcp_transport_last_error(tcp_transport *t, char *buf, size_t cap) {
  pthread_mutex_lock(&t->mu);
  snprintf(buf, cap, "%s", t->last_error);
  pthread_mutex_unlock(&t->mu);
}

void tcp_transport_free(tcp_transport *t) {
  if (!t) return;
  tcp_transport_stop(t);
  if (t->listen_fd >= 0) close(t->listen_fd);
  if (t->wake[0] >= 0) close(t->wake[0]);
  if (t->wake[1] >= 0) close(t->wake[1]);
  pthread_cond_destroy(&t->cv);
  pthread_mutex_destroy(&t->mu);
  free(t);
}
