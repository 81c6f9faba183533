/* A tiny test harness for the C suite: CHECK records a failure and goes on; each test
 * file registers its tests in tests/main.c. The runner prints "N passed, N failed". */
#ifndef BW_TEST_H
#define BW_TEST_H

#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include "breakwater.h"

extern int bw_test_failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                      \
            bw_test_failures++;                                                  \
        }                                                                        \
    } while (0)

#define CHECK_STATUS(expr, expected)                                             \
    do {                                                                         \
        int got_ = (int)(expr);                                                  \
        if (got_ != (int)(expected)) {                                           \
            char msg_[512];                                                      \
            bw_last_error_message(msg_, sizeof msg_);                            \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), expected %d; last error: %s\n", \
                    __FILE__, __LINE__, #expr, got_, bw_status_str(got_),        \
                    (int)(expected), msg_);                                      \
            bw_test_failures++;                                                  \
        }                                                                        \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, BW_OK)

/* The last error message contains `needle`. */
#define CHECK_ERROR_MENTIONS(needle)                                             \
    do {                                                                         \
        char msg_[1024];                                                         \
        bw_last_error_message(msg_, sizeof msg_);                                \
        if (strstr(msg_, (needle)) == NULL) {                                    \
            fprintf(stderr, "  %s:%d: last error \"%s\" does not mention \"%s\"\n", \
                    __FILE__, __LINE__, msg_, (needle));                         \
            bw_test_failures++;                                                  \
        }                                                                        \
    } while (0)

#endif
