/* Versions, status strings, the last-error message, the manual clock. */
#include <stdlib.h>
#include "bw_test.h"

void test_version_and_abi(void) {
    CHECK(bw_abi_version() == BW_ABI_VERSION);
    CHECK(strcmp(bw_version(), BW_VERSION_STRING) == 0);
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", BW_VERSION_MAJOR, BW_VERSION_MINOR, BW_VERSION_PATCH);
    CHECK(strcmp(bw_version(), expected) == 0);
}

void test_status_strings(void) {
    CHECK(strcmp(bw_status_str(BW_OK), "ok") == 0);
    CHECK(strstr(bw_status_str(BW_CIRCUIT_OPEN), "circuit open") != NULL);
    CHECK(strstr(bw_status_str(BW_NULL_POINTER), "null") != NULL);
    CHECK(strstr(bw_status_str(BW_PANIC), "panic") != NULL);
    CHECK(strcmp(bw_status_str(12345), "unknown status") == 0);
    CHECK(strcmp(bw_status_str(-1), "unknown status") == 0);
}

void test_last_error_message_sizing(void) {
    /* Provoke an error with a known message. */
    CHECK_STATUS(bw_clock_advance(NULL, 1), BW_NULL_POINTER);
    size_t needed = bw_last_error_message(NULL, 0);
    CHECK(needed > 0);
    char *full = malloc(needed + 1);
    CHECK(bw_last_error_message(full, needed + 1) == needed);
    CHECK(strlen(full) == needed);
    CHECK(strstr(full, "clock") != NULL);
    /* Truncation: NUL-terminated, returns the full length. */
    char small[4];
    CHECK(bw_last_error_message(small, sizeof small) == needed);
    CHECK(strlen(small) == 3);
    CHECK(strncmp(small, full, 3) == 0);
    free(full);
}

void test_clock_manual(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    CHECK(bw_clock_now(clock) == 1000);
    CHECK_OK(bw_clock_advance(clock, 500));
    CHECK(bw_clock_now(clock) == 1500);
    bw_clock *other = bw_clock_clone(clock);
    CHECK(other == clock);
    CHECK_OK(bw_clock_set(other, 7));
    CHECK(bw_clock_now(clock) == 7);
    CHECK_OK(bw_clock_set(clock, 0));
    CHECK(bw_clock_now(clock) == 1); /* 0 is reserved for "never" */
    CHECK_OK(bw_clock_advance(clock, UINT64_MAX));
    CHECK(bw_clock_now(clock) == UINT64_MAX); /* saturates */
    bw_clock_free(other);
    bw_clock_free(clock);
    bw_clock_free(NULL);
}

void test_clock_null_arguments(void) {
    CHECK_STATUS(bw_clock_new_manual(1, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_clock_set(NULL, 1), BW_NULL_POINTER);
    CHECK(bw_clock_now(NULL) == 0);
    CHECK(bw_clock_clone(NULL) == NULL);
}
