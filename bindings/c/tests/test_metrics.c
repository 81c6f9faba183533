/* The exact counters of the standalone handles (bw_*_get_metrics): what each handle
 * counts, NULL handling, and exact totals from threads that outnumber the metrics
 * slots. */
#include <pthread.h>
#include "bw_test.h"

void test_metrics_breaker_counts(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_breaker_config *config = NULL;
    CHECK_OK(bw_breaker_config_new(&config));
    CHECK_OK(bw_breaker_config_set_count_window(config, 4));
    CHECK_OK(bw_breaker_config_set_minimum_calls(config, 4));
    CHECK_OK(bw_breaker_config_set_failure_rate_threshold(config, 50.0));
    CHECK_OK(bw_breaker_config_set_slow_calls(config, 5000000ULL, 100.0)); /* slow from 5 ms */
    bw_breaker *b = NULL;
    CHECK_OK(bw_breaker_new(config, clock, &b));
    bw_breaker_config_free(config);
    bw_metrics m;
    CHECK_OK(bw_breaker_get_metrics(b, &m));
    CHECK(m.permitted == 0 && m.rejected == 0 && m.latency_count == 0 && m.latency_p50_ns == 0);
    const int outcomes[4] = {BW_OUTCOME_SUCCESS, BW_OUTCOME_FAILURE, BW_OUTCOME_FAILURE, BW_OUTCOME_TIMEOUT};
    const uint64_t durations[4] = {1000000ULL, 5000000ULL, 8000000ULL, BW_DURATION_UNKNOWN};
    for (int i = 0; i < 4; i++) {
        bw_breaker_permit permit;
        CHECK_OK(bw_breaker_try_acquire(b, &permit, NULL));
        CHECK_OK(bw_breaker_complete(b, &permit, outcomes[i], durations[i]));
    }
    CHECK(bw_breaker_state(b) == BW_BREAKER_OPEN);
    bw_breaker_permit refused;
    CHECK_STATUS(bw_breaker_try_acquire(b, &refused, NULL), BW_CIRCUIT_OPEN);
    CHECK_STATUS(bw_breaker_try_acquire(b, &refused, NULL), BW_CIRCUIT_OPEN);
    CHECK_OK(bw_breaker_get_metrics(b, &m));
    CHECK(m.permitted == 4 && m.rejected == 2);
    CHECK(m.success == 1 && m.failure == 2 && m.timeout == 1 && m.ignored == 0);
    CHECK(m.slow == 1); /* only the 8 ms call: 5 ms is not longer than 5 ms, unknown is not judged */
    CHECK(m.latency_count == 3);       /* the three given durations */
    CHECK(m.latency_sum_ns == 14000000ULL);
    CHECK(m.latency_p50_ns > 4800000ULL && m.latency_p50_ns < 5200000ULL);
    CHECK(m.latency_p999_ns > 7600000ULL && m.latency_p999_ns < 8400000ULL);
    /* A refused double completion is not counted again. */
    bw_breaker_permit once;
    CHECK_OK(bw_breaker_reset(b));
    CHECK_OK(bw_breaker_try_acquire(b, &once, NULL));
    CHECK_OK(bw_breaker_complete(b, &once, BW_OUTCOME_IGNORED, BW_DURATION_UNKNOWN));
    CHECK_STATUS(bw_breaker_complete(b, &once, BW_OUTCOME_IGNORED, BW_DURATION_UNKNOWN), BW_PERMIT_ALREADY_USED);
    CHECK_OK(bw_breaker_get_metrics(b, &m));
    CHECK(m.permitted == 5 && m.ignored == 1);
    bw_breaker_free(b);
    bw_clock_free(clock);
}

void test_metrics_limiter_counts(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_limiter_config *config = NULL;
    CHECK_OK(bw_limiter_config_new(&config));
    CHECK_OK(bw_limiter_config_set_rate(config, 10, 1000000000ULL));
    CHECK_OK(bw_limiter_config_set_burst(config, 3));
    bw_limiter *l = NULL;
    CHECK_OK(bw_limiter_new(config, clock, &l));
    bw_limiter_config_free(config);
    CHECK_OK(bw_limiter_try_acquire(l, 2, NULL));       /* one call, two tokens */
    CHECK_OK(bw_limiter_try_acquire(l, 1, NULL));
    CHECK_STATUS(bw_limiter_try_acquire(l, 1, NULL), BW_RATE_LIMITED);
    CHECK_STATUS(bw_limiter_try_acquire(l, 4, NULL), BW_NEVER_PASSES); /* an error, not counted */
    bw_reservation r;
    CHECK_OK(bw_limiter_reserve(l, 1, 1000000000ULL, &r, NULL));
    CHECK_STATUS(bw_limiter_reserve(l, 1, 0, &r, NULL), BW_RATE_LIMITED);
    CHECK_OK(bw_limiter_acquire(l, 0, 0, NULL));          /* zero tokens pass at once */
    bw_metrics m;
    CHECK_OK(bw_limiter_get_metrics(l, &m));
    CHECK(m.permitted == 4 && m.rejected == 2);
    CHECK(m.success + m.failure + m.timeout + m.ignored == 0 && m.latency_count == 0);
    bw_limiter_free(l);
    bw_clock_free(clock);
}

static bw_bulkhead *bulkhead_with(uint32_t max_concurrent) {
    bw_bulkhead_config *config = NULL;
    CHECK_OK(bw_bulkhead_config_new(&config));
    CHECK_OK(bw_bulkhead_config_set_max_concurrent(config, max_concurrent));
    bw_bulkhead *b = NULL;
    CHECK_OK(bw_bulkhead_new(config, NULL, &b));
    bw_bulkhead_config_free(config);
    return b;
}

void test_metrics_bulkhead_counts(void) {
    bw_bulkhead *b = bulkhead_with(2);
    CHECK_OK(bw_bulkhead_try_acquire(b));
    CHECK_OK(bw_bulkhead_acquire(b, 0));
    CHECK_STATUS(bw_bulkhead_try_acquire(b), BW_BULKHEAD_FULL);
    CHECK_STATUS(bw_bulkhead_acquire(b, 1000), BW_BULKHEAD_FULL);
    CHECK_OK(bw_bulkhead_release(b));
    bw_metrics m;
    CHECK_OK(bw_bulkhead_get_metrics(b, &m));
    CHECK(m.permitted == 2 && m.rejected == 2 && m.ignored == 1);
    CHECK(m.permitted - m.ignored == bw_bulkhead_in_flight(b));
    CHECK_OK(bw_bulkhead_release(b));
    CHECK_STATUS(bw_bulkhead_release(b), BW_PERMIT_ALREADY_USED); /* nothing out: not counted */
    CHECK_OK(bw_bulkhead_get_metrics(b, &m));
    CHECK(m.permitted == 2 && m.ignored == 2);
    bw_bulkhead_free(b);
}

void test_metrics_null_arguments(void) {
    bw_metrics m;
    memset(&m, 0x33, sizeof m);
    CHECK_STATUS(bw_breaker_get_metrics(NULL, &m), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_get_metrics(NULL, &m), BW_NULL_POINTER);
    CHECK_STATUS(bw_bulkhead_get_metrics(NULL, &m), BW_NULL_POINTER);
    CHECK(m.permitted == 0x3333333333333333ULL); /* nothing written */
    bw_bulkhead *b = bulkhead_with(1);
    CHECK_STATUS(bw_bulkhead_get_metrics(b, NULL), BW_NULL_POINTER);
    CHECK_ERROR_MENTIONS("`out`");
    bw_bulkhead_free(b);
}

#define METRICS_THREADS 72 /* more than the 64 slots any machine hands out */
#define METRICS_CALLS 1000

static void *breaker_caller(void *arg) {
    bw_breaker *b = arg;
    for (int i = 0; i < METRICS_CALLS; i++) {
        bw_breaker_permit permit;
        if (bw_breaker_try_acquire(b, &permit, NULL) != BW_OK) continue;
        bw_breaker_complete(b, &permit, BW_OUTCOME_SUCCESS, 1000 + (uint64_t)i);
    }
    return NULL;
}

void test_metrics_exact_from_many_threads(void) {
    bw_breaker_config *config = NULL;
    CHECK_OK(bw_breaker_config_new(&config));
    bw_breaker *b = NULL;
    CHECK_OK(bw_breaker_new(config, NULL, &b));
    bw_breaker_config_free(config);
    pthread_t threads[METRICS_THREADS];
    for (int i = 0; i < METRICS_THREADS; i++) CHECK(pthread_create(&threads[i], NULL, breaker_caller, b) == 0);
    for (int i = 0; i < METRICS_THREADS; i++) pthread_join(threads[i], NULL);
    bw_metrics m;
    CHECK_OK(bw_breaker_get_metrics(b, &m));
    uint64_t total = (uint64_t)METRICS_THREADS * METRICS_CALLS;
    CHECK(m.permitted == total && m.rejected == 0);
    CHECK(m.success == total && m.latency_count == total);
    CHECK(m.latency_sum_ns == (uint64_t)METRICS_THREADS * (1000ULL * METRICS_CALLS + (METRICS_CALLS - 1) * METRICS_CALLS / 2));
    bw_breaker_free(b);
}
