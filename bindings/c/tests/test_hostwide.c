#define _POSIX_C_SOURCE 200809L
/* Host scope from C: the policy file alone shares a bulkhead between engines (and
 * processes); another configuration under the same segment name is BW_HOST_SEGMENT with
 * a message naming the cause. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "bw_test.h"

static void policy_text(char *buf, size_t len, const char *segment, int max) {
    snprintf(buf, len,
             "[policies.p]\nscope = \"host\"\nsegment = \"%s\"\n"
             "[policies.p.bulkhead]\nmax_concurrent = %d\n",
             segment, max);
}

void test_hostwide_segment_shared_and_mismatch_refused(void) {
    char segment[64], object[80], text[256];
    snprintf(segment, sizeof segment, "ctest-%ld", (long)getpid());
    snprintf(object, sizeof object, "/breakwater.%s", segment);
    shm_unlink(object);

    bw_engine *first = NULL, *second = NULL, *other = (bw_engine *)0x1;
    policy_text(text, sizeof text, segment, 1);
    CHECK_OK(bw_engine_from_toml(text, NULL, &first));
    CHECK_OK(bw_engine_from_toml(text, NULL, &second));
    bw_policy *a = NULL, *b = NULL;
    CHECK_OK(bw_engine_policy(first, "p", &a));
    CHECK_OK(bw_engine_policy(second, "p", &b));
    bw_permit permit, refused;
    uint64_t retry_after = 0;
    CHECK_OK(bw_policy_acquire(a, BW_PRIORITY_DEFAULT, &permit, &retry_after));
    /* One permit host-wide: the other engine's policy (another process alike) is full. */
    CHECK_STATUS(bw_policy_acquire(b, BW_PRIORITY_DEFAULT, &refused, &retry_after), BW_BULKHEAD_FULL);

    policy_text(text, sizeof text, segment, 2);
    CHECK_STATUS(bw_engine_from_toml(text, NULL, &other), BW_HOST_SEGMENT);
    CHECK(other == (bw_engine *)0x1);
    CHECK_ERROR_MENTIONS("config_mismatch");
    CHECK(strstr(bw_status_str(BW_HOST_SEGMENT), "host") != NULL);

    CHECK_OK(bw_policy_complete(a, &permit, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_OK(bw_policy_acquire(b, BW_PRIORITY_DEFAULT, &refused, &retry_after));
    CHECK_OK(bw_policy_complete(b, &refused, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    bw_policy_free(a);
    bw_policy_free(b);
    bw_engine_free(first);
    bw_engine_free(second);
    CHECK(shm_unlink(object) == 0);
}
