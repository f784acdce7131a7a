/* Every numeric ml_config setter as include/memberlist.h documents it. The test reads the
 * header (its path is argv[1]) and takes from the comment right above each setter its range
 * "lo..hi", its LAN default ("default N" or "N (default") and what 0 means; then it checks
 * the library: both ends accepted and read back, one step outside refused with ML_E_INVALID
 * (message naming the knob, value unchanged), the LAN preset's value is the documented
 * default, and the comment says what 0 does ("0 is refused" when the range starts above 0).
 * A numeric setter of the header missing from the table below, or a table entry missing from
 * the header, fails the test: a knob cannot be added or changed without its documentation
 * being checked. Then the limits that only ml_memberlist_create checks (udp_buffer_size
 * against the framing) at their documented boundaries. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdint.h>

#include "ml_test.h"

typedef struct {
  const char *name;
  int bits; /* 16, 32 or 64: the setter's parameter type */
  int flag; /* 0 off, any other value on (read back as 1) */
  ml_status (*set16)(ml_config *, uint16_t);
  uint16_t (*get16)(const ml_config *);
  ml_status (*set32)(ml_config *, uint32_t);
  uint32_t (*get32)(const ml_config *);
  ml_status (*set64)(ml_config *, uint64_t);
  uint64_t (*get64)(const ml_config *);
} knob;

#define K16(n) {#n, 16, 0, ml_config_set_##n, ml_config_get_##n, NULL, NULL, NULL, NULL}
#define K32(n) {#n, 32, 0, NULL, NULL, ml_config_set_##n, ml_config_get_##n, NULL, NULL}
#define F32(n) {#n, 32, 1, NULL, NULL, ml_config_set_##n, ml_config_get_##n, NULL, NULL}
#define K64(n) {#n, 64, 0, NULL, NULL, NULL, NULL, ml_config_set_##n, ml_config_get_##n}

static const knob knobs[] = {
    K16(bind_port),
    K16(advertise_port),
    K32(protocol_version),
    K32(tcp_timeout_ms),
    K32(indirect_checks),
    K32(retransmit_mult),
    K32(suspicion_mult),
    K32(suspicion_max_timeout_mult),
    K32(push_pull_interval_ms),
    K32(probe_interval_ms),
    K32(probe_timeout_ms),
    F32(disable_tcp_pings),
    K32(awareness_max_multiplier),
    K32(gossip_interval_ms),
    K32(gossip_nodes),
    K32(gossip_to_the_dead_time_ms),
    K32(udp_buffer_size),
    K32(dead_node_reclaim_time_ms),
    K32(handoff_queue_depth),
    K32(meta_max_size),
    K32(log_level),
    K64(seed),
    K32(post_join_push_pulls),
    K32(max_user_msg_size),
    F32(skip_inbound_label_check),
    F32(gossip_verify_incoming),
    F32(gossip_verify_outgoing),
    F32(enable_compression),
    F32(enable_checksum),
    K32(max_stream_size),
    K32(max_push_pull_nodes),
    K32(max_decompressed_size),
    K32(max_concurrent_streams),
    K32(max_inbound_connections),
    K32(max_queued_callbacks),
    K32(max_queued_log_lines),
    K32(max_broadcast_origins),
    K32(max_replies_per_packet),
    K32(max_queued_broadcasts),
    K32(max_queued_broadcast_bytes),
    K32(max_repair_broadcasts),
    K32(max_inbound_connections_per_source),
    K32(max_inbound_stream_bytes),
    K32(reconnect_interval_ms),
    K32(reconnect_timeout_ms),
    K32(max_reconnect_members),
    F32(reconnect_seeds),
    F32(event_queue),
    K32(wire_format),
};
#define NKNOBS (sizeof knobs / sizeof knobs[0])

static uint64_t type_max(const knob *k) {
  return k->bits == 16 ? UINT16_MAX : k->bits == 32 ? UINT32_MAX : UINT64_MAX;
}

static ml_status kset(const knob *k, ml_config *cfg, uint64_t v) {
  if (k->bits == 16) return k->set16(cfg, (uint16_t)v);
  if (k->bits == 32) return k->set32(cfg, (uint32_t)v);
  return k->set64(cfg, v);
}

static uint64_t kget(const knob *k, const ml_config *cfg) {
  if (k->bits == 16) return k->get16(cfg);
  if (k->bits == 32) return k->get32(cfg);
  return k->get64(cfg);
}

/* ---- reading the header --------------------------------------------------------------- */

#define MAX_DOCS 128

typedef struct {
  char name[64];
  int bits;
  char *comment; /* the comment block right above the setter (malloc'd) */
  int used;
} doc;

static doc docs[MAX_DOCS];
static size_t ndocs = 0;

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = (char *)malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (buf) buf[n] = '\0';
  fclose(f);
  return buf;
}

static const char *skip_space(const char *p) {
  while (*p == ' ' || *p == '\t') ++p;
  return p;
}

/* The setter declared on this line, if it takes one integer: fills name and bits. */
static int numeric_setter(const char *line, char *name, size_t cap, int *bits) {
  static const char decl[] = "ML_API ml_status ml_config_set_";
  const char *p = skip_space(line), *open, *comma, *close, *second;
  size_t n;
  if (strncmp(p, decl, sizeof decl - 1) != 0) return 0;
  p += sizeof decl - 1;
  open = strchr(p, '(');
  if (!open) return 0;
  close = strchr(open, ')');
  comma = strchr(open, ',');
  if (!close || !comma || comma > close) return 0; /* one line, config plus a value */
  second = strchr(comma + 1, ',');
  if (second && second < close) return 0; /* more than one value */
  n = (size_t)(open - p);
  if (n + 1 > cap) return 0;
  memcpy(name, p, n);
  name[n] = '\0';
  p = skip_space(comma + 1);
  if (strncmp(p, "uint16_t ", 9) == 0) *bits = 16;
  else if (strncmp(p, "uint32_t ", 9) == 0) *bits = 32;
  else if (strncmp(p, "uint64_t ", 9) == 0) *bits = 64;
  else return 0;
  return 1;
}

/* Every numeric setter of the header with the comment that ends on the line above it. */
static int parse_header(const char *path) {
  char *text = read_file(path), *line, *next;
  const char *comment_start = NULL; /* of the comment block being read or just closed */
  char *last_comment = NULL;        /* the block that ended on the previous line */
  int in_comment = 0;
  if (!text) {
    fprintf(stderr, "cannot read %s\n", path);
    return 0;
  }
  for (line = text; line && *line; line = next) {
    const char *p;
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    p = skip_space(line);
    if (in_comment || strncmp(p, "/*", 2) == 0) {
      if (!in_comment) comment_start = p;
      in_comment = strstr(in_comment ? line : p + 2, "*/") == NULL;
      if (!in_comment) {
        /* Rebuild the block from comment_start to here (lines were split in place). */
        size_t len = 0;
        const char *q;
        free(last_comment);
        for (q = comment_start; q <= line; q += strlen(q) + 1) len += strlen(q) + 1;
        last_comment = (char *)malloc(len + 1);
        REQUIRE(last_comment != NULL);
        last_comment[0] = '\0';
        for (q = comment_start; q <= line; q += strlen(q) + 1) {
          strcat(last_comment, q);
          strcat(last_comment, "\n");
        }
      }
      continue;
    }
    {
      char name[64];
      int bits = 0;
      if (numeric_setter(line, name, sizeof name, &bits)) {
        REQUIRE(ndocs < MAX_DOCS);
        snprintf(docs[ndocs].name, sizeof docs[ndocs].name, "%s", name);
        docs[ndocs].bits = bits;
        docs[ndocs].comment = last_comment; /* NULL: undocumented */
        last_comment = NULL;
        ++ndocs;
      }
    }
    free(last_comment); /* a comment belongs only to the declaration right below it */
    last_comment = NULL;
  }
  free(last_comment);
  free(text);
  return 1;
}

/* A number as the header writes it: decimal digits or UINT16/32/64_MAX. */
static int parse_number(const char *p, uint64_t *out, const char **end) {
  static const struct {
    const char *name;
    uint64_t value;
  } names[] = {{"UINT16_MAX", UINT16_MAX}, {"UINT32_MAX", UINT32_MAX}, {"UINT64_MAX", UINT64_MAX}};
  size_t i;
  uint64_t v = 0;
  for (i = 0; i < 3; ++i) {
    size_t n = strlen(names[i].name);
    if (strncmp(p, names[i].name, n) == 0) {
      *out = names[i].value;
      *end = p + n;
      return 1;
    }
  }
  if (!isdigit((unsigned char)*p)) return 0;
  while (isdigit((unsigned char)*p)) v = v * 10 + (uint64_t)(*p++ - '0');
  *out = v;
  *end = p;
  return 1;
}

/* The first "lo..hi" of the comment; *at receives where it starts. */
static int parse_range(const char *c, uint64_t *lo, uint64_t *hi, const char **at, const char **after) {
  const char *dots;
  for (dots = strstr(c, ".."); dots; dots = strstr(dots + 2, "..")) {
    const char *start = dots, *end;
    while (start > c && (isalnum((unsigned char)start[-1]) || start[-1] == '_')) --start;
    if (parse_number(start, lo, &end) && end == dots && parse_number(dots + 2, hi, &end)) {
      *at = start;
      *after = end;
      return 1;
    }
  }
  return 0;
}

/* The LAN default: "default N" or "N (default". */
static int parse_default(const char *c, uint64_t *def) {
  const char *p, *end;
  for (p = strstr(c, "default "); p; p = strstr(p + 1, "default "))
    if (parse_number(p + 8, def, &end)) return 1;
  for (p = strstr(c, " (default"); p; p = strstr(p + 1, " (default")) {
    const char *start = p;
    while (start > c && isdigit((unsigned char)start[-1])) --start;
    if (start < p && parse_number(start, def, &end)) return 1;
  }
  return 0;
}

/* Does the comment say what 0 means? A "0" standing alone outside the range, not the
 * default's value. */
static int mentions_zero(const char *c, const char *range_at, const char *range_end) {
  const char *p;
  for (p = c; *p; ++p) {
    if (p >= range_at && p < range_end) continue;
    if (*p != '0') continue;
    if (p > c && (isalnum((unsigned char)p[-1]) || p[-1] == '.' || p[-1] == '_')) continue;
    if (isalnum((unsigned char)p[1]) || p[1] == '.') continue;
    if (p - c >= 8 && strncmp(p - 8, "default ", 8) == 0) continue;
    return 1;
  }
  return 0;
}

/* ---- the checks ------------------------------------------------------------------------ */

static const knob *knob_named(const char *name) {
  size_t i;
  for (i = 0; i < NKNOBS; ++i)
    if (strcmp(knobs[i].name, name) == 0) return &knobs[i];
  return NULL;
}

static uint64_t readback(const knob *k, uint64_t v) { return k->flag ? (v != 0) : v; }

static void check_refused(const knob *k, ml_config *cfg, uint64_t v) {
  uint64_t before = kget(k, cfg);
  ml_status s = kset(k, cfg, v);
  if (s != ML_E_INVALID)
    fprintf(stderr, "%s: %llu should be refused, got %s\n", k->name, (unsigned long long)v, ml_status_str(s));
  CHECK(s == ML_E_INVALID);
  CHECK(strstr(ml_last_error(), k->name) != NULL); /* the message names the knob */
  CHECK(kget(k, cfg) == before);                     /* and nothing changed */
}

static void check_accepted(const knob *k, ml_config *cfg, uint64_t v) {
  ml_status s = kset(k, cfg, v);
  if (s != ML_OK)
    fprintf(stderr, "%s: %llu should be accepted, got %s: %s\n", k->name, (unsigned long long)v,
            ml_status_str(s), ml_last_error());
  CHECK(s == ML_OK);
  CHECK(kget(k, cfg) == readback(k, v));
}

static void check_documented_ranges(void) {
  size_t i;
  SECTION("every numeric setter of the header is in the table, and the other way round");
  for (i = 0; i < ndocs; ++i) {
    const knob *k = knob_named(docs[i].name);
    if (!k) fprintf(stderr, "ml_config_set_%s is not covered by this test\n", docs[i].name);
    CHECK(k != NULL);
    if (k) {
      CHECK(k->bits == docs[i].bits);
      docs[i].used = 1;
    }
  }
  for (i = 0; i < NKNOBS; ++i) {
    size_t j;
    int found = 0;
    for (j = 0; j < ndocs; ++j)
      if (strcmp(docs[j].name, knobs[i].name) == 0) found = 1;
    if (!found) fprintf(stderr, "%s: no numeric setter of that name in the header\n", knobs[i].name);
    CHECK(found);
  }

  SECTION("documented range, default and meaning of 0 hold for every knob");
  for (i = 0; i < ndocs; ++i) {
    const doc *d = &docs[i];
    const knob *k = knob_named(d->name);
    uint64_t lo = 0, hi = 0, def = 0;
    const char *at = NULL, *after = NULL;
    ml_config *cfg = NULL;
    if (!k) continue;
    if (!d->comment) fprintf(stderr, "ml_config_set_%s has no comment\n", d->name);
    CHECK(d->comment != NULL);
    if (!d->comment) continue;
    if (!parse_range(d->comment, &lo, &hi, &at, &after)) {
      fprintf(stderr, "ml_config_set_%s: no lo..hi range in its comment\n", d->name);
      CHECK(0);
      continue;
    }
    printf("%-28s %llu..%llu\n", d->name, (unsigned long long)lo, (unsigned long long)hi);
    CHECK(lo <= hi && hi <= type_max(k));
    if (lo == 0) {
      if (!mentions_zero(d->comment, at, after)) fprintf(stderr, "%s: the comment does not say what 0 means\n", d->name);
      CHECK(mentions_zero(d->comment, at, after));
    } else {
      if (!strstr(d->comment, "0 is refused")) fprintf(stderr, "%s: the comment should say \"0 is refused\"\n", d->name);
      CHECK(strstr(d->comment, "0 is refused") != NULL);
    }
    CHECK_OK(ml_config_new_lan(&cfg));
    REQUIRE(cfg != NULL);
    if (!parse_default(d->comment, &def)) {
      fprintf(stderr, "%s: no default in its comment\n", d->name);
      CHECK(0);
    } else if (kget(k, cfg) != readback(k, def)) {
      fprintf(stderr, "%s: documented default %llu, the LAN preset has %llu\n", d->name,
              (unsigned long long)def, (unsigned long long)kget(k, cfg));
      CHECK(0);
    }
    check_accepted(k, cfg, lo);
    check_accepted(k, cfg, hi);
    if (lo > 0) {
      check_refused(k, cfg, lo - 1);
      check_refused(k, cfg, 0);
    }
    if (hi < type_max(k)) {
      check_refused(k, cfg, hi + 1);
      check_refused(k, cfg, type_max(k));
    }
    CHECK(kset(k, NULL, lo) == ML_E_INVALID);
    CHECK(kget(k, NULL) == 0);
    ml_config_free(cfg);
  }
  for (i = 0; i < ndocs; ++i) free(docs[i].comment);
}

/* ml_memberlist_create with this udp_buffer_size, checksum and label. */
static ml_status create_with(uint32_t udp, uint32_t checksum, const char *label) {
  ml_config *cfg = NULL;
  ml_memberlist *ml = NULL;
  ml_status s;
  CHECK_OK(ml_config_new_local(&cfg));
  CHECK_OK(ml_config_set_name(cfg, "udp-size"));
  CHECK_OK(ml_config_set_bind_addr(cfg, "127.0.0.1"));
  CHECK_OK(ml_config_set_bind_port(cfg, 0));
  CHECK_OK(ml_config_set_log_level(cfg, ML_LOG_OFF));
  CHECK_OK(ml_config_set_udp_buffer_size(cfg, udp));
  CHECK_OK(ml_config_set_enable_checksum(cfg, checksum));
  CHECK_OK(ml_config_set_label(cfg, label));
  s = ml_memberlist_create(&ml, NULL, cfg, NULL);
  if (s != ML_OK) {
    printf("udp_buffer_size %u, checksum %u, label \"%s\": %s (%s)\n", udp, checksum, label,
           ml_status_str(s), ml_last_error());
    CHECK(strstr(ml_last_error(), "udp_buffer_size") != NULL);
  }
  ml_memberlist_destroy(ml);
  ml_config_free(cfg);
  return s;
}

static void check_udp_buffer_size_at_create(void) {
  SECTION("udp_buffer_size leaves 64 bytes after the framing (31, +5 checksum, +2+label)");
  CHECK(create_with(95, 0, "") == ML_OK);
  CHECK(create_with(99, 1, "") == ML_E_INVALID);
  CHECK(create_with(100, 1, "") == ML_OK);
  CHECK(create_with(103, 1, "ab") == ML_E_INVALID);
  CHECK(create_with(104, 1, "ab") == ML_OK);
  CHECK(create_with(96, 0, "ab") == ML_E_INVALID);
  CHECK(create_with(99, 0, "ab") == ML_OK);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s path/to/memberlist.h\n", argv[0]);
    return 2;
  }
  if (!parse_header(argv[1])) return 1;
  printf("%zu numeric setters in %s\n", ndocs, argv[1]);
  REQUIRE(ndocs >= NKNOBS);
  check_documented_ranges();
  check_udp_buffer_size_at_create();
  return ml_test_finish("capi_config_doc");
}
