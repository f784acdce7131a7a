#include <memberlist.h>
#include <stdio.h>
#include <string.h>
/* Two nodes in one process; their host transport hands every message straight to the other. */
static ml_memberlist *node[2];
static const char *addr[2] = {"10.0.0.1:7946", "10.0.0.2:7946"};
#define PEER(to) node[strcmp(to, addr[0]) != 0]

static int32_t send_packet(void *me, const char *to, const uint8_t *data, size_t len) {
  return ml_memberlist_transport_packet(PEER(to), addr[(uintptr_t)me], data, len);
}
static int32_t send_stream(void *me, const char *to, uint64_t token, const uint8_t *data, size_t len) {
  /* The peer's token tells who dialled, with which token: the reply goes back there. */
  return ml_memberlist_transport_stream(PEER(to), addr[(uintptr_t)me], token * 2 + (uintptr_t)me, data, len);
}
static void stream_reply(void *me, uint64_t token, const uint8_t *reply, size_t len, uint32_t has_reply) {
  (void)me;
  ml_memberlist_transport_stream_done(node[token % 2], token / 2, has_reply ? ML_OK : ML_E_REJECTED,
                                      reply, len);
}
int main(void) {
  for (uintptr_t i = 0; i < 2; i++) {
    ml_transport t = {.version = ML_TRANSPORT_VERSION, .user_data = (void *)i, .send_packet = send_packet,
                      .send_stream = send_stream, .stream_reply = stream_reply};
    ml_config *cfg = NULL;
    ml_config_new_local(&cfg);
    ml_config_set_name(cfg, i ? "b" : "a");
    ml_config_set_transport(cfg, &t, addr[i]);
    if (ml_memberlist_create(&node[i], NULL, cfg, NULL) != ML_OK) return 1;
    ml_config_free(cfg);
  }
  size_t members = 0;
  ml_status s = ml_memberlist_join(node[1], &addr[0], 1, NULL);
  ml_memberlist_get_num_members(node[1], &members);
  printf("join: %s; b sees %zu members\n", ml_status_str(s), members);
  for (int i = 0; i < 2; i++) ml_memberlist_shutdown(node[i]); /* no more bytes between them */
  for (int i = 0; i < 2; i++) ml_memberlist_destroy(node[i]);
  return s == ML_OK && members == 2 ? 0 : 1;
}
