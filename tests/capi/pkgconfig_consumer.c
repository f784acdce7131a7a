/* Built against the INSTALLED library (headers, .so and .pc from `cmake --install`) with
 *   cc pkgconfig_consumer.c $(pkg-config --cflags --libs memberlist)
 * or through find_package(memberlist): checks the version and runs two nodes on loopback. */
#define _POSIX_C_SOURCE 200809L
#include "ml_test.h"

int main(void) {
  uint32_t major = 0, minor = 0, patch = 0;
  ml_memberlist *a = NULL, *b = NULL;
  ml_config *cfg;
  char addr[64];
  const char *addrs[1];
  int ok;

  ml_version(&major, &minor, &patch);
  printf("installed libmemberlist %s (ABI %u)\n", ml_version_string(), ml_abi_version());
  CHECK(major == ML_VERSION_MAJOR && minor == ML_VERSION_MINOR && patch == ML_VERSION_PATCH);

  cfg = ml_test_config("installed-a");
  CHECK_OK(ml_memberlist_create(&a, NULL, cfg, NULL));
  CHECK_OK(ml_config_set_name(cfg, "installed-b"));
  CHECK_OK(ml_memberlist_create(&b, NULL, cfg, NULL));
  ml_config_free(cfg);
  REQUIRE(a != NULL && b != NULL);
  ml_test_address_of(a, addr, sizeof addr);
  addrs[0] = addr;
  CHECK_OK(ml_memberlist_join(b, addrs, 1, NULL));
  WAIT_UNTIL(ok, t_num_members(a) == 2 && t_num_members(b) == 2);
  CHECK(ok);
  CHECK_OK(ml_memberlist_leave(b, 2000));
  ml_memberlist_destroy(b);
  ml_memberlist_destroy(a);
  return ml_test_finish("pkgconfig_consumer");
}
