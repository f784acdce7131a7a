/* memberlist-agent: a program built on the public C ABI only (memberlist.h + the shared
 * library).
 *
 *   memberlist-agent demo [--nodes N] [--verbose]
 *       A local cluster on 127.0.0.1 in one process: N nodes join, one is destroyed without
 *       leaving (suspect, then dead), another leaves gracefully; prints the final membership.
 *   memberlist-agent agent --name NAME --bind HOST:PORT [--join ADDR]... [--preset P]
 *                          [--log-level L] [--key KEY]... [--label LABEL]
 *                          [--wire native|hashicorp]
 *                          [--reconnect-interval MS] [--reconnect-timeout MS]
 *                          [--reconnect-seeds 0|1] [--transport sockets|tcp-only]
 *       One node that prints membership events and leaves gracefully on SIGINT/SIGTERM.
 *       With --transport tcp-only it carries everything over TCP through the host-transport
 *       ABI (tcp_transport.c): no UDP socket at all.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <memberlist.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tcp_transport.h"

/* ---- small utilities ------------------------------------------------------------------ */


/* The status forms, for a handle known to be valid. */
static uint32_t node_state(const ml_node *n) {
  uint32_t state = ML_STATE_DEAD;
  (void)ml_node_get_state(n, &state);
  return state;
}
static size_t num_members(ml_memberlist *ml) {
  size_t count = 0;
  (void)ml_memberlist_get_num_members(ml, &count);
  return count;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static double g_start;
static pthread_mutex_t g_print_mu = PTHREAD_MUTEX_INITIALIZER;

/* One line on stdout, prefixed with the time since start; callbacks print concurrently. */
static void say(const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&g_print_mu);
  printf("[%7.3fs] ", now_s() - g_start);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  pthread_mutex_unlock(&g_print_mu);
}

static const char *event_name(uint32_t event) {
  switch (event) {
    case ML_EVENT_JOIN: return "join";
    case ML_EVENT_LEAVE: return "leave";
    case ML_EVENT_UPDATE: return "update";
    default: return "?";
  }
}

static const char *state_name(uint32_t state) {
  switch (state) {
    case ML_STATE_ALIVE: return "alive";
    case ML_STATE_SUSPECT: return "suspect";
    case ML_STATE_DEAD: return "dead";
    case ML_STATE_LEFT: return "left";
    default: return "?";
  }
}

static const char *level_name(uint32_t level) {
  static const char *const names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};
  return level <= ML_LOG_ERROR ? names[level] : "?";
}

static void on_log(void *ud, uint32_t level, const char *msg, size_t len) {
  const char *who = (const char *)ud;
  pthread_mutex_lock(&g_print_mu);
  fprintf(stderr, "[%7.3fs] %s %s: %.*s\n", now_s() - g_start, who, level_name(level), (int)len, msg);
  pthread_mutex_unlock(&g_print_mu);
}

static void print_members(ml_memberlist *ml, const char *title) {
  ml_node_list *list = NULL;
  size_t i;
  if (ml_memberlist_members(ml, &list) != ML_OK) {
    fprintf(stderr, "members: %s\n", ml_memberlist_last_error(ml));
    return;
  }
  pthread_mutex_lock(&g_print_mu);
  printf("%s\n", title);
  printf("  %-16s %-24s %-8s %s\n", "NAME", "ADDRESS", "STATE", "INCARNATION");
  for (i = 0; i < ml_node_list_len(list); ++i) {
    const ml_node *n = ml_node_list_get(list, i);
    printf("  %-16s %-24s %-8s %u\n", ml_node_name(n), ml_node_address(n),
           state_name(node_state(n)), ml_node_incarnation(n));
  }
  fflush(stdout);
  pthread_mutex_unlock(&g_print_mu);
  ml_node_list_free(list);
}

static int parse_level(const char *s, uint32_t *out) {
  static const char *const names[] = {"trace", "debug", "info", "warn", "error", "off"};
  uint32_t i;
  for (i = 0; i < 6; ++i)
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 1;
    }
  return 0;
}

static ml_status new_preset(const char *preset, ml_config **cfg) {
  if (strcmp(preset, "lan") == 0) return ml_config_new_lan(cfg);
  if (strcmp(preset, "wan") == 0) return ml_config_new_wan(cfg);
  if (strcmp(preset, "local") == 0) return ml_config_new_local(cfg);
  return ML_E_INVALID;
}

/* "host:port" or "[v6]:port" into host (brackets removed) and port. */
static int split_host_port(const char *s, char *host, size_t cap, uint16_t *port) {
  const char *colon;
  const char *h = s;
  size_t hlen;
  char *end;
  long p;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') return 0;
    h = s + 1;
    hlen = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return 0;
    hlen = (size_t)(colon - s);
  }
  if (hlen == 0 || hlen >= cap) return 0;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  errno = 0;
  p = strtol(colon + 1, &end, 10);
  if (errno || *end != '\0' || end == colon + 1 || p < 0 || p > 65535) return 0;
  *port = (uint16_t)p;
  return 1;
}

/* ---- demo ----------------------------------------------------------------------------- */

#define DEMO_MAX_NODES 64
#define DEMO_MAX_EVENTS 4096

typedef struct {
  int observer;    /* index of the node that saw it */
  uint32_t event;
  uint32_t state;
  char name[32];
} demo_event;

typedef struct {
  int index;
  int verbose;
} demo_node_ud;

static pthread_mutex_t g_demo_mu = PTHREAD_MUTEX_INITIALIZER;
static demo_event g_events[DEMO_MAX_EVENTS];
static int g_nevents;
static int g_freed;

static void demo_on_event(void *ud, uint32_t event, const ml_node *node) {
  const demo_node_ud *me = (const demo_node_ud *)ud;
  pthread_mutex_lock(&g_demo_mu);
  if (g_nevents < DEMO_MAX_EVENTS) {
    demo_event *e = &g_events[g_nevents++];
    e->observer = me->index;
    e->event = event;
    e->state = node_state(node);
    snprintf(e->name, sizeof e->name, "%s", ml_node_name(node));
  }
  pthread_mutex_unlock(&g_demo_mu);
  if (me->index == 0 || me->verbose)
    say("node-%d sees %-6s %-8s %s (%s)", me->index, event_name(event), ml_node_name(node),
        ml_node_address(node), state_name(node_state(node)));
}

static void demo_on_log(void *ud, uint32_t level, const char *msg, size_t len) {
  const demo_node_ud *me = (const demo_node_ud *)ud;
  pthread_mutex_lock(&g_print_mu);
  fprintf(stderr, "[%7.3fs] node-%d %s: %.*s\n", now_s() - g_start, me->index, level_name(level),
          (int)len, msg);
  pthread_mutex_unlock(&g_print_mu);
}

static void demo_on_free(void *ud) {
  pthread_mutex_lock(&g_demo_mu);
  g_freed++;
  pthread_mutex_unlock(&g_demo_mu);
  free(ud);
}

/* Whether node `observer` got `event` for `name` with `state`. */
static int demo_saw(int observer, uint32_t event, const char *name, uint32_t state) {
  int i, found = 0;
  pthread_mutex_lock(&g_demo_mu);
  for (i = 0; i < g_nevents && !found; ++i)
    found = g_events[i].observer == observer && g_events[i].event == event &&
            g_events[i].state == state && strcmp(g_events[i].name, name) == 0;
  pthread_mutex_unlock(&g_demo_mu);
  return found;
}

/* State of `name` in ml's member list, or -1 when it is not listed. */
static int member_state(ml_memberlist *ml, const char *name) {
  ml_node_list *list = NULL;
  size_t i;
  int state = -1;
  if (ml_memberlist_members(ml, &list) != ML_OK) return -1;
  for (i = 0; i < ml_node_list_len(list); ++i) {
    const ml_node *n = ml_node_list_get(list, i);
    if (strcmp(ml_node_name(n), name) == 0) state = (int)node_state(n);
  }
  ml_node_list_free(list);
  return state;
}

static int demo_fail(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "demo: FAILED: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 1;
}

static int demo_usage(FILE *out) {
  fprintf(out,
          "usage: memberlist-agent demo [--nodes N] [--verbose]\n"
          "  Starts N nodes (default 5, 3..%d) on 127.0.0.1 in this process with the Local\n"
          "  preset, shows them join, destroys one without leaving (suspect, then dead),\n"
          "  has another leave gracefully and prints the final membership of node-0.\n"
          "  --verbose prints every node's events (not only node-0's) and its warnings.\n",
          DEMO_MAX_NODES);
  return out == stdout ? 0 : 2;
}

static int run_demo(int argc, char **argv) {
  const double phase_deadline = 20.0; /* each phase; the whole demo stays under a minute */
  ml_memberlist *nodes[DEMO_MAX_NODES] = {0};
  int n = 5, verbose = 0, i, rc = 0;
  char seed[64];
  ml_node *self = NULL;
  double t;
  int victim, leaver, suspect_seen = 0;

  for (i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) {
      n = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--verbose") == 0) {
      verbose = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      return demo_usage(stdout);
    } else {
      fprintf(stderr, "demo: unknown argument %s\n", argv[i]);
      return demo_usage(stderr);
    }
  }
  if (n < 3 || n > DEMO_MAX_NODES) {
    fprintf(stderr, "demo: --nodes must be in 3..%d\n", DEMO_MAX_NODES);
    return 2;
  }
  victim = n - 1;
  leaver = n - 2;

  say("libmemberlist %s: starting %d nodes on 127.0.0.1 (Local preset)", ml_version_string(), n);
  for (i = 0; i < n; ++i) {
    ml_config *cfg = NULL;
    ml_callbacks cb;
    char name[32];
    demo_node_ud *ud = (demo_node_ud *)malloc(sizeof *ud);
    if (!ud) return demo_fail("out of memory");
    ud->index = i;
    ud->verbose = verbose;
    snprintf(name, sizeof name, "node-%d", i);
    if (ml_config_new_local(&cfg) != ML_OK || ml_config_set_name(cfg, name) != ML_OK ||
        ml_config_set_bind_addr(cfg, "127.0.0.1") != ML_OK ||
        ml_config_set_bind_port(cfg, 0) != ML_OK ||
        /* The Local preset sends each piece of news 2 * ceil(log10(n + 1)) = 2 times at this
         * size, so a leave can miss a node until the next push/pull; the LAN multiplier (4)
         * makes the demo's timeline dependable. */
        ml_config_set_retransmit_mult(cfg, 4) != ML_OK ||
        ml_config_set_log_level(cfg, verbose ? ML_LOG_WARN : ML_LOG_OFF) != ML_OK) {
      free(ud);
      ml_config_free(cfg);
      rc = demo_fail("configuring %s: %s", name, ml_last_error());
      goto out;
    }
    memset(&cb, 0, sizeof cb);
    cb.version = ML_CALLBACKS_VERSION;
    cb.user_data = ud;
    cb.user_data_free = demo_on_free;
    cb.on_event = demo_on_event;
    cb.on_log = demo_on_log; /* warnings (e.g. failed pings to the crashed node) with --verbose */
    if (ml_memberlist_create(&nodes[i], NULL, cfg, &cb) != ML_OK) {
      ml_config_free(cfg);
      rc = demo_fail("creating %s: %s", name, ml_last_error());
      goto out;
    }
    ml_config_free(cfg);
  }
  if (ml_memberlist_local_node(nodes[0], &self) != ML_OK) {
    rc = demo_fail("local node: %s", ml_memberlist_last_error(nodes[0]));
    goto out;
  }
  snprintf(seed, sizeof seed, "%s", ml_node_address(self));
  ml_node_free(self);

  say("nodes 1..%d join node-0 at %s", n - 1, seed);
  for (i = 1; i < n; ++i) {
    const char *addrs[1];
    addrs[0] = seed;
    if (ml_memberlist_join(nodes[i], addrs, 1, NULL) != ML_OK) {
      rc = demo_fail("node-%d join: %s", i, ml_memberlist_last_error(nodes[i]));
      goto out;
    }
  }
  t = now_s();
  for (;;) {
    int converged = 1;
    for (i = 0; i < n; ++i)
      if (num_members(nodes[i]) != (size_t)n) converged = 0;
    if (converged) break;
    if (now_s() - t > phase_deadline) {
      rc = demo_fail("the %d nodes did not all see each other within %.0f s", n, phase_deadline);
      goto out;
    }
    sleep_ms(20);
  }
  say("all %d nodes see %d members (%.2f s after the joins)", n, n, now_s() - t);

  /* A failure: destroy without leaving. Nothing announces "suspect", so poll the list. */
  say("node-%d is destroyed without leaving (a crash, as far as the others can tell)", victim);
  {
    char victim_name[32];
    snprintf(victim_name, sizeof victim_name, "node-%d", victim);
    ml_memberlist_destroy(nodes[victim]);
    nodes[victim] = NULL;
    t = now_s();
    for (;;) {
      if (!suspect_seen && member_state(nodes[0], victim_name) == ML_STATE_SUSPECT) {
        suspect_seen = 1;
        say("node-0 marks %s SUSPECT after %.2f s", victim_name, now_s() - t);
      }
      if (demo_saw(0, ML_EVENT_LEAVE, victim_name, ML_STATE_DEAD)) break;
      if (now_s() - t > phase_deadline) {
        rc = demo_fail("node-0 did not declare %s dead within %.0f s", victim_name, phase_deadline);
        goto out;
      }
      sleep_ms(10);
    }
    if (!suspect_seen) say("(node-0 learnt %s was dead before it polled it as suspect)", victim_name);
    say("node-0 declares %s DEAD after %.2f s", victim_name, now_s() - t);
    t = now_s();
    for (;;) {
      int all = 1;
      for (i = 0; i < victim; ++i)
        if (!demo_saw(i, ML_EVENT_LEAVE, victim_name, ML_STATE_DEAD)) all = 0;
      if (all) break;
      if (now_s() - t > phase_deadline) {
        rc = demo_fail("not every node declared %s dead", victim_name);
        goto out;
      }
      sleep_ms(10);
    }
    say("every surviving node sees %s dead", victim_name);
  }

  /* A graceful leave. */
  {
    char leaver_name[32];
    ml_status s;
    snprintf(leaver_name, sizeof leaver_name, "node-%d", leaver);
    say("%s leaves gracefully", leaver_name);
    t = now_s();
    s = ml_memberlist_leave(nodes[leaver], 5000);
    if (s != ML_OK && s != ML_E_TIMEOUT) {
      rc = demo_fail("%s leave: %s", leaver_name, ml_memberlist_last_error(nodes[leaver]));
      goto out;
    }
    for (;;) {
      int all = 1;
      for (i = 0; i < leaver; ++i)
        if (!demo_saw(i, ML_EVENT_LEAVE, leaver_name, ML_STATE_LEFT)) all = 0;
      if (all) break;
      if (now_s() - t > phase_deadline) {
        rc = demo_fail("not every node saw %s leave", leaver_name);
        goto out;
      }
      sleep_ms(10);
    }
    say("every remaining node sees %s LEFT after %.2f s", leaver_name, now_s() - t);
    ml_memberlist_destroy(nodes[leaver]);
    nodes[leaver] = NULL;
  }

  if (num_members(nodes[0]) != (size_t)(n - 2)) {
    rc = demo_fail("node-0 counts %zu members, expected %d", num_members(nodes[0]),
                   n - 2);
    goto out;
  }
  print_members(nodes[0], "final membership as seen by node-0:");

out:
  for (i = 0; i < n; ++i) ml_memberlist_destroy(nodes[i]);
  if (rc == 0) {
    if (g_freed != n) return demo_fail("user_data_free ran %d times for %d nodes", g_freed, n);
    say("demo finished in %.2f s", now_s() - g_start);
  }
  return rc;
}

/* ---- agent ---------------------------------------------------------------------------- */

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* An encryption key as hex (32, 48 or 64 digits) or base64 (padded or not, standard or
 * URL alphabet). Returns the number of bytes written to out (cap 64), 0 if malformed; the
 * library checks the length (16, 24 or 32). */
static size_t decode_key(const char *text, uint8_t *out, size_t cap) {
  size_t n = strlen(text), i, len = 0;
  int all_hex = n > 0 && n % 2 == 0;
  uint32_t acc = 0;
  int bits = 0;
  for (i = 0; i < n && all_hex; ++i) all_hex = hex_value(text[i]) >= 0;
  if (all_hex && (n == 32 || n == 48 || n == 64)) {
    for (i = 0; i < n / 2 && i < cap; ++i)
      out[i] = (uint8_t)(hex_value(text[2 * i]) << 4 | hex_value(text[2 * i + 1]));
    return n / 2;
  }
  while (n > 0 && text[n - 1] == '=') --n;
  for (i = 0; i < n; ++i) {
    int v = base64_value(text[i]);
    if (v < 0) return 0;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (len == cap) return 0;
      out[len++] = (uint8_t)(acc >> bits);
    }
  }
  return len;
}

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1; /* only a flag: everything else happens on the main thread */
}

static void agent_on_event(void *ud, uint32_t event, const ml_node *node) {
  (void)ud;
  say("%-6s %s %s (%s)", event_name(event), ml_node_name(node), ml_node_address(node),
      state_name(node_state(node)));
}

static int agent_usage(FILE *out) {
  fprintf(out,
          "usage: memberlist-agent agent --name NAME --bind HOST:PORT [--join ADDR]...\n"
          "                              [--preset lan|wan|local] [--log-level LEVEL]\n"
          "                              [--key KEY]... [--label LABEL]\n"
          "                              [--wire native|hashicorp]\n"
          "                              [--reconnect-interval MS] [--reconnect-timeout MS]\n"
          "                              [--reconnect-seeds 0|1]\n"
          "                              [--transport sockets|tcp-only]\n"
          "  Runs one node and prints membership events; SIGINT/SIGTERM make it leave\n"
          "  gracefully and exit.\n"
          "  --bind HOST:PORT   IPv4 or [IPv6] literal and port (0: any free port)\n"
          "  --join ADDR        an existing member: host, host:port, [v6]:port or name/host:port\n"
          "  --preset P         lan (default), wan or local\n"
          "  --log-level L      trace, debug, info, warn (default), error or off\n"
          "  --key KEY          AES key of 16, 24 or 32 bytes, as hex or base64; the first is\n"
          "                     the primary (encrypts), all are tried to decrypt\n"
          "  --label LABEL      cluster label: only nodes with the same label talk\n"
          "  --wire FORMAT      native (default) or hashicorp: speak hashicorp/memberlist's\n"
          "                     protocol, to join a cluster of Go memberlist nodes\n"
          "  --reconnect-interval MS  how often to try a member marked dead, and the --join\n"
          "                     addresses while alone (default 30000; 0: never)\n"
          "  --reconnect-timeout MS   how long after its death a member is still tried\n"
          "                     (default 86400000)\n"
          "  --reconnect-seeds 0|1    re-join the --join addresses while alone (default 1)\n"
          "  --transport T      sockets (default): UDP and TCP on the --bind port; tcp-only:\n"
          "                     datagrams and streams over TCP only, no UDP socket (for\n"
          "                     networks that block UDP); every member must use it, and\n"
          "                     --bind then needs a specific IP (it is the advertised address)\n");
  return out == stdout ? 0 : 2;
}

static int run_agent(int argc, char **argv) {
  const char *name = NULL, *bind = NULL, *preset = "lan", *label = NULL;
  int tcp_only = 0;
  tcp_transport *tt = NULL;
  uint32_t wire = ML_WIRE_NATIVE;
  /* --reconnect-interval, --reconnect-timeout, --reconnect-seeds: UINT32_MAX = not given */
  uint32_t reconnect[3] = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
  static const char *const reconnect_flags[3] = {"--reconnect-interval", "--reconnect-timeout",
                                                 "--reconnect-seeds"};
  const char **joins = (const char **)calloc((size_t)argc + 1, sizeof *joins);
  const char **keys = (const char **)calloc((size_t)argc + 1, sizeof *keys);
  size_t njoins = 0, nkeys = 0, k;
  uint32_t level = ML_LOG_WARN;
  char host[64];
  uint16_t port = 0;
  ml_config *cfg = NULL;
  ml_memberlist *ml = NULL;
  ml_callbacks cb;
  struct sigaction sa;
  ml_status s;
  int i, rc = 0;

  if (!joins || !keys) {
    free(joins);
    free(keys);
    return 1;
  }
  for (i = 0; i < argc; ++i) {
    const char *arg = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      free(joins);
      free(keys);
      return agent_usage(stdout);
    }
    if (!val) {
      fprintf(stderr, "agent: %s needs a value\n", arg);
      free(joins);
      free(keys);
      return agent_usage(stderr);
    }
    if (strcmp(arg, "--name") == 0) {
      name = val;
    } else if (strcmp(arg, "--bind") == 0) {
      bind = val;
    } else if (strcmp(arg, "--join") == 0) {
      joins[njoins++] = val;
    } else if (strcmp(arg, "--preset") == 0) {
      preset = val;
    } else if (strcmp(arg, "--key") == 0) {
      keys[nkeys++] = val;
    } else if (strcmp(arg, "--label") == 0) {
      label = val;
    } else if (strcmp(arg, "--wire") == 0) {
      if (strcmp(val, "native") == 0) {
        wire = ML_WIRE_NATIVE;
      } else if (strcmp(val, "hashicorp") == 0) {
        wire = ML_WIRE_HASHICORP;
      } else {
        fprintf(stderr, "agent: --wire wants native or hashicorp, got %s\n", val);
        free(joins);
        free(keys);
        return 2;
      }
    } else if (strcmp(arg, "--transport") == 0) {
      if (strcmp(val, "sockets") == 0) {
        tcp_only = 0;
      } else if (strcmp(val, "tcp-only") == 0) {
        tcp_only = 1;
      } else {
        fprintf(stderr, "agent: --transport wants sockets or tcp-only, got %s\n", val);
        free(joins);
        free(keys);
        return 2;
      }
    } else if (strcmp(arg, reconnect_flags[0]) == 0 || strcmp(arg, reconnect_flags[1]) == 0 ||
               strcmp(arg, reconnect_flags[2]) == 0) {
      char *end = NULL;
      unsigned long v = strtoul(val, &end, 10);
      int which = strcmp(arg, reconnect_flags[0]) == 0 ? 0 : strcmp(arg, reconnect_flags[1]) == 0 ? 1 : 2;
      if (!*val || *end || v >= UINT32_MAX || (which == 2 && v > 1)) {
        fprintf(stderr, "agent: %s wants %s, got %s\n", arg, which == 2 ? "0 or 1" : "milliseconds", val);
        free(joins);
        free(keys);
        return 2;
      }
      reconnect[which] = (uint32_t)v;
    } else if (strcmp(arg, "--log-level") == 0) {
      if (!parse_level(val, &level)) {
        fprintf(stderr, "agent: unknown log level %s\n", val);
        free(joins);
        free(keys);
        return 2;
      }
    } else {
      fprintf(stderr, "agent: unknown argument %s\n", arg);
      free(joins);
      free(keys);
      return agent_usage(stderr);
    }
    ++i;
  }
  if (!name || !bind) {
    fprintf(stderr, "agent: --name and --bind are required\n");
    free(joins);
    free(keys);
    return agent_usage(stderr);
  }
  if (!split_host_port(bind, host, sizeof host, &port)) {
    fprintf(stderr, "agent: --bind wants HOST:PORT or [V6]:PORT, got %s\n", bind);
    free(joins);
    free(keys);
    return 2;
  }
  if (new_preset(preset, &cfg) != ML_OK) {
    fprintf(stderr, "agent: unknown preset %s (lan, wan or local)\n", preset);
    free(joins);
    free(keys);
    return 2;
  }
  if (ml_config_set_name(cfg, name) != ML_OK || ml_config_set_bind_addr(cfg, host) != ML_OK ||
      ml_config_set_bind_port(cfg, port) != ML_OK || ml_config_set_log_level(cfg, level) != ML_OK ||
      ml_config_set_wire_format(cfg, wire) != ML_OK) {
    fprintf(stderr, "agent: %s\n", ml_last_error());
    ml_config_free(cfg);
    free(joins);
    free(keys);
    return 2;
  }
  for (k = 0; k < nkeys; ++k) {
    uint8_t key[64];
    size_t len = decode_key(keys[k], key, sizeof key);
    if (len == 0 || ml_config_add_key(cfg, key, len) != ML_OK) {
      fprintf(stderr, "agent: --key %s: %s\n", keys[k],
              len == 0 ? "not hex or base64" : ml_last_error());
      ml_config_free(cfg);
      free(joins);
      free(keys);
      return 2;
    }
  }
  if ((reconnect[0] != UINT32_MAX && ml_config_set_reconnect_interval_ms(cfg, reconnect[0]) != ML_OK) ||
      (reconnect[1] != UINT32_MAX && ml_config_set_reconnect_timeout_ms(cfg, reconnect[1]) != ML_OK) ||
      (reconnect[2] != UINT32_MAX && ml_config_set_reconnect_seeds(cfg, reconnect[2]) != ML_OK)) {
    fprintf(stderr, "agent: %s\n", ml_last_error());
    ml_config_free(cfg);
    free(joins);
    free(keys);
    return 2;
  }
  if (label && ml_config_set_label(cfg, label) != ML_OK) {
    fprintf(stderr, "agent: --label: %s\n", ml_last_error());
    ml_config_free(cfg);
    free(joins);
    free(keys);
    return 2;
  }
  free(keys);
  keys = NULL;
  if (tcp_only) {
    /* Listen before create: the library advertises the address the transport listens on. */
    char err[256];
    ml_transport ops;
    tt = tcp_transport_new(host, port, ml_config_get_max_stream_size(cfg),
                           ml_config_get_tcp_timeout_ms(cfg), err, sizeof err);
    if (!tt) {
      fprintf(stderr, "agent: --transport tcp-only: %s\n", err);
      ml_config_free(cfg);
      free(joins);
      return 2;
    }
    tcp_transport_ops(tt, &ops);
    if (ml_config_set_transport(cfg, &ops, tcp_transport_address(tt)) != ML_OK) {
      fprintf(stderr, "agent: --transport tcp-only: %s\n", ml_last_error());
      tcp_transport_free(tt);
      ml_config_free(cfg);
      free(joins);
      return 2;
    }
  }

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  memset(&cb, 0, sizeof cb);
  cb.version = ML_CALLBACKS_VERSION;
  cb.user_data = (void *)name;
  cb.on_event = agent_on_event;
  cb.on_log = on_log;
  s = ml_memberlist_create(&ml, NULL, cfg, &cb);
  ml_config_free(cfg);
  if (s != ML_OK) {
    fprintf(stderr, "agent: create: %s: %s\n", ml_status_str(s), ml_last_error());
    tcp_transport_free(tt);
    free(joins);
    free(keys);
    return 1;
  }
  if (tt && tcp_transport_start(tt, ml) != 0) {
    fprintf(stderr, "agent: --transport tcp-only: cannot start its listener thread\n");
    rc = 1;
  }
  {
    ml_node *self = NULL;
    if (ml_memberlist_local_node(ml, &self) == ML_OK)
      say("%s running at %s (preset %s, transport %s)", ml_node_name(self), ml_node_address(self),
          preset, tt ? "tcp-only" : "sockets");
    ml_node_free(self);
  }
  if (rc == 0 && njoins > 0) {
    uint32_t joined = 0;
    s = ml_memberlist_join(ml, joins, njoins, &joined);
    if (s != ML_OK) {
      fprintf(stderr, "agent: join: %s: %s\n", ml_status_str(s), ml_memberlist_last_error(ml));
      if (tt) {
        char why[160];
        tcp_transport_last_error(tt, why, sizeof why);
        if (why[0]) fprintf(stderr, "agent: join: tcp-only transport: %s\n", why);
      }
      rc = 1;
    } else {
      say("joined through %u of %zu address(es); %zu members", joined, njoins,
          num_members(ml));
    }
  }
  while (rc == 0 && !g_stop) sleep_ms(100);
  if (rc == 0) {
    say("signal received: leaving");
    s = ml_memberlist_leave(ml, 5000);
    if (s != ML_OK)
      fprintf(stderr, "agent: leave: %s: %s\n", ml_status_str(s), ml_memberlist_last_error(ml));
    print_members(ml, "membership at exit:");
  }
  /* The order the host-transport contract asks for: the library stops sending, the
   * transport stops handing it bytes (and waits for its threads), then the memberlist goes,
   * and the transport last. */
  ml_memberlist_shutdown(ml);
  if (tt) tcp_transport_stop(tt);
  ml_memberlist_destroy(ml);
  if (tt) {
    tcp_transport_stats st;
    tcp_transport_get_stats(tt, &st);
    say("tcp-only transport: datagrams sent %llu, dropped %llu, received %llu; streams sent %llu, "
        "failed %llu, received %llu; connections refused %llu; bad frames %llu",
        (unsigned long long)st.datagrams_sent, (unsigned long long)st.datagrams_dropped,
        (unsigned long long)st.datagrams_received, (unsigned long long)st.streams_sent,
        (unsigned long long)st.streams_failed, (unsigned long long)st.streams_received,
        (unsigned long long)st.connections_refused, (unsigned long long)st.bad_frames);
    tcp_transport_free(tt);
  }
  free(joins);
  free(keys);
  say("bye");
  return rc;
}

/* ---- main ----------------------------------------------------------------------------- */

static int usage(FILE *out) {
  fprintf(out,
          "usage: memberlist-agent demo [--nodes N] [--verbose]\n"
          "       memberlist-agent agent --name NAME --bind HOST:PORT [--join ADDR]...\n"
          "                              [--preset lan|wan|local] [--log-level LEVEL]\n"
          "                              [--transport sockets|tcp-only] [...]\n"
          "       memberlist-agent <command> --help\n");
  return out == stdout ? 0 : 2;
}

int main(int argc, char **argv) {
  g_start = now_s();
  if (argc < 2) return usage(stderr);
  if (strcmp(argv[1], "demo") == 0) return run_demo(argc - 2, argv + 2);
  if (strcmp(argv[1], "agent") == 0) return run_agent(argc - 2, argv + 2);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)
    return usage(stdout);
  fprintf(stderr, "memberlist-agent: unknown command %s\n", argv[1]);
  return usage(stderr);
}
