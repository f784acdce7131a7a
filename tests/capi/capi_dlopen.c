/* Loads libmemberlist with dlopen/dlsym only (this program is not linked against it), as a
 * binding that resolves symbols at run time would: checks the version, runs one memberlist
 * on loopback, and checks that internal C++ symbols are not reachable.
 *   capi_dlopen /path/to/libmemberlist.so.0 */
#define _POSIX_C_SOURCE 200809L
#define ML_TEST_NO_LINK
#include "ml_test.h"

#include <dlfcn.h>

typedef void (*version_fn)(uint32_t *, uint32_t *, uint32_t *);
typedef uint32_t (*abi_fn)(void);
typedef ml_status (*config_new_fn)(ml_config **);
typedef ml_status (*set_str_fn)(ml_config *, const char *);
typedef ml_status (*set_port_fn)(ml_config *, uint16_t);
typedef void (*config_free_fn)(ml_config *);
typedef ml_status (*create_fn)(ml_memberlist **, ml_runtime *, const ml_config *,
                               const ml_callbacks *);
typedef size_t (*num_fn)(ml_memberlist *);
typedef void (*destroy_fn)(ml_memberlist *);
typedef const char *(*last_error_fn)(void);

/* ISO C forbids converting void* to a function pointer; POSIX allows it through memcpy. */
static void *sym(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  if (!p) fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());
  return p;
}
#define LOAD(type, var, name)                 \
  type var;                                   \
  do {                                        \
    void *p_ = sym(lib, name);                \
    REQUIRE(p_ != NULL);                      \
    memcpy(&var, &p_, sizeof var);            \
  } while (0)

int main(int argc, char **argv) {
  void *lib;
  uint32_t major = 0, minor = 0, patch = 0;
  ml_config *cfg = NULL;
  ml_memberlist *ml = NULL;
  if (argc != 2) {
    fprintf(stderr, "usage: %s LIBRARY\n", argv[0]);
    return 2;
  }
  SECTION("dlopen");
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) fprintf(stderr, "dlopen: %s\n", dlerror());
  REQUIRE(lib != NULL);
  {
    LOAD(version_fn, version, "ml_version");
    LOAD(abi_fn, abi, "ml_abi_version");
    LOAD(config_new_fn, config_new_local, "ml_config_new_local");
    LOAD(set_str_fn, set_name, "ml_config_set_name");
    LOAD(set_str_fn, set_bind_addr, "ml_config_set_bind_addr");
    LOAD(set_port_fn, set_bind_port, "ml_config_set_bind_port");
    LOAD(config_free_fn, config_free, "ml_config_free");
    LOAD(create_fn, create, "ml_memberlist_create");
    LOAD(num_fn, num_members, "ml_memberlist_num_members");
    LOAD(destroy_fn, destroy, "ml_memberlist_destroy");
    LOAD(last_error_fn, last_error, "ml_last_error");

    SECTION("the loaded library is not older than this header");
    version(&major, &minor, &patch);
    printf("loaded libmemberlist %u.%u.%u, ABI %u\n", major, minor, patch, abi());
    CHECK(abi() == ML_ABI_VERSION);
    CHECK(major == ML_VERSION_MAJOR && minor >= ML_VERSION_MINOR);

    SECTION("one memberlist through dlsym'd functions");
    CHECK(config_new_local(&cfg) == ML_OK);
    REQUIRE(cfg != NULL);
    CHECK(set_name(cfg, "dl-node") == ML_OK);
    CHECK(set_bind_addr(cfg, "127.0.0.1") == ML_OK);
    CHECK(set_bind_port(cfg, 0) == ML_OK);
    if (create(&ml, NULL, cfg, NULL) != ML_OK) fprintf(stderr, "create: %s\n", last_error());
    CHECK(ml != NULL);
    CHECK(num_members(ml) == 1);
    destroy(ml);
    config_free(cfg);
  }
  SECTION("internals are hidden");
  CHECK(dlsym(lib, "_ZN10memberlist7runtime7RuntimeC1Ejm") == NULL); /* Runtime::Runtime(unsigned, size_t) */
  CHECK(dlsym(lib, "ml_does_not_exist") == NULL);
  CHECK(dlclose(lib) == 0);
  return ml_test_finish("capi_dlopen");
}
