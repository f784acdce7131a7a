/* Uses a deprecated form: tests/header/deprecated.sh expects a diagnostic naming its
 * replacement, and none with ML_NO_DEPRECATION_WARNINGS. */
#include <memberlist.h>

#ifdef __cplusplus
extern "C" {
#endif
int ml_uses_deprecated(void);
#ifdef __cplusplus
}
#endif

int ml_uses_deprecated(void) {
  ml_runtime *rt;
  return ml_runtime_new(1, &rt);
}
