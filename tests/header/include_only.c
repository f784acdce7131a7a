/* memberlist.h must compile alone (nothing included before it) as C99, C11, C++11 and C++17
 * with -Wall -Wextra -Wpedantic -Werror; included twice to check the include guard. */
#include <memberlist.h>
#include <memberlist.h>

#ifdef __cplusplus
extern "C" {
#endif
int ml_header_check(void);
#ifdef __cplusplus
}
#endif

/* Touch the types and macros so that a broken definition shows up (no casts and no literal
 * NULLs here: the C++ flags include -Wold-style-cast and -Wzero-as-null-pointer-constant). */
int ml_header_check(void) {
  ml_callbacks cb;
  ml_status s = ML_OK;
  int sum = ML_VERSION_MAJOR + ML_ABI_VERSION + ML_STATE_LEFT + ML_EVENT_UPDATE + ML_LOG_OFF;
  cb.version = ML_CALLBACKS_VERSION;
  s = s + ML_E_INTERNAL;
  return sum + s + (cb.version == ML_CALLBACKS_VERSION) + (ML_TIMEOUT_FOREVER == 0xFFFFFFFFu);
}
