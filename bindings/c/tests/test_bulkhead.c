#define _POSIX_C_SOURCE 200809L
/* Standalone bulkhead: builder, error paths, full then release, release with nothing
 * out, blocking acquire with a timeout and with a hand-over. */
#include <pthread.h>
#include <time.h>
#include "bw_test.h"

static bw_bulkhead *bulkhead_of(uint32_t max, uint64_t max_wait_ns) {
    bw_bulkhead_config *config = NULL;
    CHECK_OK(bw_bulkhead_config_new(&config));
    CHECK_OK(bw_bulkhead_config_set_max_concurrent(config, max));
    CHECK_OK(bw_bulkhead_config_set_max_wait(config, max_wait_ns));
    bw_bulkhead *bulkhead = NULL;
    CHECK_OK(bw_bulkhead_new(config, NULL, &bulkhead));
    bw_bulkhead_config_free(config);
    return bulkhead;
}

void test_bulkhead_config_errors(void) {
    bw_bulkhead_config *config = NULL;
    bw_bulkhead *bulkhead = NULL;
    CHECK_STATUS(bw_bulkhead_config_new(NULL), BW_NULL_POINTER);
    CHECK_OK(bw_bulkhead_config_new(&config));
    CHECK_STATUS(bw_bulkhead_config_set_max_concurrent(NULL, 1), BW_NULL_POINTER);
    CHECK_STATUS(bw_bulkhead_config_set_max_wait(NULL, 1), BW_NULL_POINTER);
    CHECK_STATUS(bw_bulkhead_new(NULL, NULL, &bulkhead), BW_NULL_POINTER);
    CHECK_STATUS(bw_bulkhead_new(config, NULL, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_bulkhead_new(config, NULL, &bulkhead), BW_INVALID_CONFIG); /* unset */
    CHECK_ERROR_MENTIONS("max_concurrent");
    CHECK_OK(bw_bulkhead_config_set_max_concurrent(config, UINT32_MAX));
    CHECK_STATUS(bw_bulkhead_new(config, NULL, &bulkhead), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("max_concurrent");
    CHECK(bulkhead == NULL);
    CHECK_OK(bw_bulkhead_config_set_max_concurrent(config, 2));
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    CHECK_OK(bw_bulkhead_new(config, clock, &bulkhead));
    CHECK(bw_bulkhead_available(bulkhead) == 2);
    bw_bulkhead_free(bulkhead);
    bw_clock_free(clock);
    bw_bulkhead_config_free(config);
    bw_bulkhead_config_free(NULL);
    bw_bulkhead_free(NULL);
    CHECK(bw_bulkhead_clone(NULL) == NULL);
    CHECK(bw_bulkhead_in_flight(NULL) == 0);
    CHECK(bw_bulkhead_available(NULL) == 0);
    CHECK_STATUS(bw_bulkhead_try_acquire(NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_bulkhead_acquire(NULL, 0), BW_NULL_POINTER);
    CHECK_STATUS(bw_bulkhead_release(NULL), BW_NULL_POINTER);
}

void test_bulkhead_full_then_release(void) {
    bw_bulkhead *b = bulkhead_of(3, 0);
    CHECK_STATUS(bw_bulkhead_release(b), BW_PERMIT_ALREADY_USED); /* nothing out */
    CHECK_ERROR_MENTIONS("no bulkhead permit");
    CHECK(bw_bulkhead_in_flight(b) == 0);
    for (int i = 0; i < 3; i++) CHECK_OK(bw_bulkhead_try_acquire(b));
    CHECK(bw_bulkhead_in_flight(b) == 3 && bw_bulkhead_available(b) == 0);
    CHECK_STATUS(bw_bulkhead_try_acquire(b), BW_BULKHEAD_FULL);
    CHECK_STATUS(bw_bulkhead_acquire(b, 0), BW_BULKHEAD_FULL);
    CHECK_STATUS(bw_bulkhead_acquire(b, BW_WAIT_DEFAULT), BW_BULKHEAD_FULL); /* max_wait 0 */
    CHECK_OK(bw_bulkhead_release(b));
    CHECK(bw_bulkhead_in_flight(b) == 2 && bw_bulkhead_available(b) == 1);
    CHECK_OK(bw_bulkhead_try_acquire(b));
    for (int i = 0; i < 3; i++) CHECK_OK(bw_bulkhead_release(b));
    CHECK_STATUS(bw_bulkhead_release(b), BW_PERMIT_ALREADY_USED);
    CHECK(bw_bulkhead_in_flight(b) == 0 && bw_bulkhead_available(b) == 3);
    bw_bulkhead *copy = bw_bulkhead_clone(b);
    CHECK(copy == b);
    bw_bulkhead_free(copy);
    bw_bulkhead_free(b);
}

static void *release_later(void *arg) {
    struct timespec ts = {0, 5000000}; /* 5 ms */
    nanosleep(&ts, NULL);
    CHECK_OK(bw_bulkhead_release((bw_bulkhead *)arg));
    return NULL;
}

void test_bulkhead_acquire_waits(void) {
    bw_bulkhead *b = bulkhead_of(1, 2000000000ULL);
    CHECK_OK(bw_bulkhead_try_acquire(b));
    /* Times out: nobody releases. */
    CHECK_STATUS(bw_bulkhead_acquire(b, 2000000ULL), BW_BULKHEAD_FULL);
    /* Handed over by a release on another thread. */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, release_later, b) == 0);
    CHECK_OK(bw_bulkhead_acquire(b, BW_WAIT_DEFAULT));
    pthread_join(t, NULL);
    CHECK(bw_bulkhead_in_flight(b) == 1);
    CHECK_OK(bw_bulkhead_release(b));
    bw_bulkhead_free(b);
}

void test_bulkhead_create_free_loop(void) {
    for (int i = 0; i < 200; i++) {
        bw_bulkhead *b = bulkhead_of(4, 0);
        bw_bulkhead *c = bw_bulkhead_clone(b);
        CHECK_OK(bw_bulkhead_try_acquire(c));
        CHECK_OK(bw_bulkhead_release(b));
        bw_bulkhead_free(b);
        bw_bulkhead_free(c);
    }
}

/* The exact counters (bw_metrics): a release completes a permit as ignored. */
void test_bulkhead_metrics(void) {
    bw_bulkhead *b = bulkhead_of(2, 0);
    CHECK_OK(bw_bulkhead_try_acquire(b));
    CHECK_OK(bw_bulkhead_acquire(b, 0));
    CHECK_STATUS(bw_bulkhead_try_acquire(b), BW_BULKHEAD_FULL);
    CHECK_STATUS(bw_bulkhead_acquire(b, 1000), BW_BULKHEAD_FULL);
    CHECK_OK(bw_bulkhead_release(b));
    bw_metrics m;
    CHECK_STATUS(bw_bulkhead_get_metrics(NULL, &m), BW_NULL_POINTER);
    CHECK_STATUS(bw_bulkhead_get_metrics(b, NULL), BW_NULL_POINTER);
    CHECK_OK(bw_bulkhead_get_metrics(b, &m));
    CHECK(m.permitted == 2 && m.rejected == 2 && m.ignored == 1);
    CHECK(m.permitted - m.ignored == bw_bulkhead_in_flight(b));
    CHECK_OK(bw_bulkhead_release(b));
    CHECK_STATUS(bw_bulkhead_release(b), BW_PERMIT_ALREADY_USED); /* nothing out: not counted */
    CHECK_OK(bw_bulkhead_get_metrics(b, &m));
    CHECK(m.permitted == 2 && m.ignored == 2);
    bw_bulkhead_free(b);
}
