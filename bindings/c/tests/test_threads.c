/* Threads hammering one standalone breaker and one bulkhead: exact counts after, and the
 * bulkhead's limit never exceeded; exact counters from more threads than metrics slots. */
#include <pthread.h>
#include <stdatomic.h>
#include "bw_test.h"

#define THREADS 4
#define ITERATIONS 20000
#define LIMIT 1

struct shared {
    bw_breaker *breaker;
    bw_bulkhead *bulkhead;
    atomic_int in_flight;
    atomic_int max_seen;
    atomic_long admitted, full, breaker_ok, errors;
};

static void *hammer(void *arg) {
    struct shared *s = arg;
    for (int i = 0; i < ITERATIONS; i++) {
        bw_breaker_permit permit;
        if (bw_breaker_try_acquire(s->breaker, &permit, NULL) == BW_OK) {
            atomic_fetch_add(&s->breaker_ok, 1);
            if (bw_breaker_complete(s->breaker, &permit, BW_OUTCOME_SUCCESS, 1000) != BW_OK)
                atomic_fetch_add(&s->errors, 1);
        } else {
            atomic_fetch_add(&s->errors, 1);
        }
        int status = bw_bulkhead_try_acquire(s->bulkhead);
        if (status == BW_OK) {
            int now = atomic_fetch_add(&s->in_flight, 1) + 1;
            int seen = atomic_load(&s->max_seen);
            while (now > seen && !atomic_compare_exchange_weak(&s->max_seen, &seen, now)) {}
            atomic_fetch_add(&s->admitted, 1);
            for (volatile int spin = 0; spin < 50; spin++) {} /* hold the slot a moment */
            atomic_fetch_sub(&s->in_flight, 1);
            if (bw_bulkhead_release(s->bulkhead) != BW_OK) atomic_fetch_add(&s->errors, 1);
        } else if (status == BW_BULKHEAD_FULL) {
            atomic_fetch_add(&s->full, 1);
        } else {
            atomic_fetch_add(&s->errors, 1);
        }
    }
    return NULL;
}

void test_threads_breaker_and_bulkhead(void) {
    struct shared s;
    memset(&s, 0, sizeof s);
    bw_breaker_config *bc = NULL;
    CHECK_OK(bw_breaker_config_new(&bc));
    CHECK_OK(bw_breaker_config_set_count_window(bc, 500));
    CHECK_OK(bw_breaker_new(bc, NULL, &s.breaker));
    bw_breaker_config_free(bc);
    bw_bulkhead_config *hc = NULL;
    CHECK_OK(bw_bulkhead_config_new(&hc));
    CHECK_OK(bw_bulkhead_config_set_max_concurrent(hc, LIMIT));
    CHECK_OK(bw_bulkhead_new(hc, NULL, &s.bulkhead));
    bw_bulkhead_config_free(hc);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, hammer, &s) == 0);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    long total = (long)THREADS * ITERATIONS;
    CHECK(atomic_load(&s.errors) == 0);
    CHECK(atomic_load(&s.breaker_ok) == total);
    CHECK(atomic_load(&s.admitted) + atomic_load(&s.full) == total);
    CHECK(atomic_load(&s.max_seen) <= LIMIT);
    CHECK(bw_bulkhead_in_flight(s.bulkhead) == 0);
    CHECK(bw_bulkhead_available(s.bulkhead) == LIMIT);
    bw_breaker_stats stats;
    CHECK_OK(bw_breaker_get_stats(s.breaker, &stats));
    CHECK(stats.state == BW_BREAKER_CLOSED);
    CHECK(stats.calls == 500 && stats.failures == 0);
    CHECK(stats.stale_outcomes == 0 && stats.generation == 0);
    printf("     (bulkhead: %ld admitted, %ld full)\n", atomic_load(&s.admitted), atomic_load(&s.full));
    bw_breaker_free(s.breaker);
    bw_bulkhead_free(s.bulkhead);
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

void test_threads_standalone_metrics_exact(void) {
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
