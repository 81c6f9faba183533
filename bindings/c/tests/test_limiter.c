/* Standalone rate limiter: builder, error paths, exact burst and retry_after with the
 * manual clock, reservations by value, blocking acquire. */
#include "bw_test.h"

static bw_limiter *limiter_of(uint64_t rate, uint64_t period_ns, uint64_t burst, bw_clock *clock) {
    bw_limiter_config *config = NULL;
    CHECK_OK(bw_limiter_config_new(&config));
    CHECK_OK(bw_limiter_config_set_rate(config, rate, period_ns));
    if (burst) CHECK_OK(bw_limiter_config_set_burst(config, burst));
    bw_limiter *limiter = NULL;
    CHECK_OK(bw_limiter_new(config, clock, &limiter));
    bw_limiter_config_free(config);
    return limiter;
}

void test_limiter_config_errors(void) {
    bw_limiter_config *config = NULL;
    bw_limiter *limiter = NULL;
    CHECK_STATUS(bw_limiter_config_new(NULL), BW_NULL_POINTER);
    CHECK_OK(bw_limiter_config_new(&config));
    CHECK_STATUS(bw_limiter_config_set_rate(NULL, 1, 1), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_config_set_burst(NULL, 1), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_new(NULL, NULL, &limiter), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_new(config, NULL, NULL), BW_NULL_POINTER);
    /* The rate is required. */
    CHECK_STATUS(bw_limiter_new(config, NULL, &limiter), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("`rate`");
    CHECK_OK(bw_limiter_config_set_rate(config, 10, 0));
    CHECK_STATUS(bw_limiter_new(config, NULL, &limiter), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("`period`");
    CHECK_OK(bw_limiter_config_set_rate(config, 100, 10)); /* 10 per ns */
    CHECK_STATUS(bw_limiter_new(config, NULL, &limiter), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("rate");
    CHECK_OK(bw_limiter_config_set_rate(config, 10, 1000000000ULL));
    CHECK_OK(bw_limiter_config_set_burst(config, 0));
    CHECK_STATUS(bw_limiter_new(config, NULL, &limiter), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("`burst`");
    CHECK(limiter == NULL);
    CHECK_OK(bw_limiter_config_set_burst(config, 3));
    CHECK_OK(bw_limiter_new(config, NULL, &limiter));
    CHECK(bw_limiter_available(limiter) == 3);
    bw_limiter_free(limiter);
    bw_limiter_config_free(config);
    bw_limiter_config_free(NULL);
    bw_limiter_free(NULL);
    CHECK(bw_limiter_clone(NULL) == NULL);
    CHECK(bw_limiter_available(NULL) == 0);
}

void test_limiter_null_arguments(void) {
    bw_limiter *l = limiter_of(10, 1000000000ULL, 0, NULL);
    bw_reservation r;
    CHECK_STATUS(bw_limiter_try_acquire(NULL, 1, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_reserve(NULL, 1, 0, &r, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_reserve(l, 1, 0, NULL, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_cancel(NULL, &r, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_cancel(l, NULL, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_acquire(NULL, 1, 0, NULL), BW_NULL_POINTER);
    /* n = 0 always passes, even with NULL out-pointers. */
    CHECK_OK(bw_limiter_try_acquire(l, 0, NULL));
    bw_limiter_free(l);
}

void test_limiter_scenario(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_limiter *l = limiter_of(10, 1000000000ULL, 5, clock); /* 10/s, burst 5 */
    CHECK(bw_limiter_available(l) == 5);
    for (int i = 0; i < 5; i++) CHECK_OK(bw_limiter_try_acquire(l, 1, NULL));
    uint64_t after = 0;
    CHECK_STATUS(bw_limiter_try_acquire(l, 1, &after), BW_RATE_LIMITED);
    CHECK(after == 100000000ULL); /* exactly one emission interval */
    CHECK_STATUS(bw_limiter_try_acquire(l, 2, &after), BW_RATE_LIMITED);
    CHECK(after == 200000000ULL);
    CHECK_STATUS(bw_limiter_try_acquire(l, 1, NULL), BW_RATE_LIMITED); /* NULL is fine */
    CHECK_OK(bw_clock_advance(clock, 99999999ULL));
    CHECK_STATUS(bw_limiter_try_acquire(l, 1, &after), BW_RATE_LIMITED);
    CHECK(after == 1);
    CHECK_OK(bw_clock_advance(clock, 1));
    CHECK_OK(bw_limiter_try_acquire(l, 1, NULL));
    CHECK(bw_limiter_available(l) == 0);
    /* More than the burst can never pass: an error, not a rejection. */
    after = 777;
    CHECK_STATUS(bw_limiter_try_acquire(l, 6, &after), BW_NEVER_PASSES);
    CHECK(after == 777);
    CHECK_ERROR_MENTIONS("burst");
    /* Reservations: committed now, due later. */
    bw_reservation r, r2, untouched;
    memset(&untouched, 0x22, sizeof untouched);
    CHECK_OK(bw_limiter_reserve(l, 1, 1000000000ULL, &r, NULL));
    CHECK(r.wait_ns == 100000000ULL && r.permits == 1);
    CHECK_STATUS(bw_limiter_reserve(l, 1, 150000000ULL, &untouched, &after), BW_RATE_LIMITED);
    CHECK(after == 50000000ULL); /* then the same reservation (due in 200 ms) would pass */
    CHECK(untouched.wait_ns == 0x2222222222222222ULL);
    bool cancelled = false;
    CHECK_OK(bw_limiter_cancel(l, &r, &cancelled));
    CHECK(cancelled);
    CHECK_STATUS(bw_limiter_cancel(l, &r, &cancelled), BW_PERMIT_ALREADY_USED);
    /* The slot went back: the same reservation waits the same again. */
    CHECK_OK(bw_limiter_reserve(l, 1, 1000000000ULL, &r, NULL));
    CHECK(r.wait_ns == 100000000ULL);
    CHECK_OK(bw_limiter_reserve(l, 1, 1000000000ULL, &r2, NULL));
    CHECK(r2.wait_ns == 200000000ULL);
    /* An earlier reservation with a later one after it goes back too (the later one
       moves up), then the later one. */
    CHECK_OK(bw_limiter_cancel(l, &r, &cancelled));
    CHECK(cancelled);
    CHECK_OK(bw_limiter_cancel(l, &r2, &cancelled));
    CHECK(cancelled);
    CHECK_STATUS(bw_limiter_reserve(l, 6, 0, &r, NULL), BW_NEVER_PASSES);
    /* An empty reservation. */
    CHECK_OK(bw_limiter_reserve(l, 0, 0, &r, NULL));
    CHECK(r.wait_ns == 0 && r.permits == 0);
    CHECK_OK(bw_limiter_cancel(l, &r, &cancelled));
    CHECK(cancelled);
    /* Wrong handle and garbage. */
    bw_limiter *other = limiter_of(10, 1000000000ULL, 5, clock);
    CHECK_OK(bw_limiter_reserve(other, 1, 0, &r, NULL));
    CHECK_STATUS(bw_limiter_cancel(l, &r, NULL), BW_WRONG_HANDLE);
    CHECK_OK(bw_limiter_cancel(other, &r, NULL));
    memset(&r, 0x33, sizeof r);
    CHECK_STATUS(bw_limiter_cancel(l, &r, NULL), BW_INVALID_ARGUMENT);
    bw_limiter *copy = bw_limiter_clone(l);
    CHECK(copy == l);
    bw_limiter_free(copy);
    bw_limiter_free(other);
    bw_limiter_free(l);
    bw_clock_free(clock);
}

void test_limiter_acquire_blocks(void) {
    /* System clock, 10/s, burst 1: after one permit the next is due within 100 ms. */
    bw_limiter *l = limiter_of(10, 1000000000ULL, 1, NULL);
    CHECK_OK(bw_limiter_acquire(l, 1, 0, NULL));
    uint64_t after = 0;
    CHECK_STATUS(bw_limiter_acquire(l, 1, 0, &after), BW_RATE_LIMITED);
    CHECK(after > 0 && after <= 100000000ULL);
    CHECK_STATUS(bw_limiter_acquire(l, 2, 0, NULL), BW_NEVER_PASSES);
    /* Sleeps until the permit is due (at most 100 ms). */
    CHECK_OK(bw_limiter_acquire(l, 1, 1000000000ULL, NULL));
    bw_limiter_free(l);
}

void test_limiter_create_free_loop(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    for (int i = 0; i < 200; i++) {
        bw_limiter *l = limiter_of(100, 1000000000ULL, 10, i % 2 ? clock : NULL);
        bw_limiter *c = bw_limiter_clone(l);
        CHECK_OK(bw_limiter_try_acquire(c, 1, NULL));
        bw_limiter_free(l);
        bw_limiter_free(c);
    }
    bw_clock_free(clock);
}

/* The exact counters (bw_metrics): calls let through and refused; no completions. */
void test_limiter_metrics(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_limiter *l = limiter_of(10, 1000000000ULL, 3, clock);
    CHECK_OK(bw_limiter_try_acquire(l, 2, NULL));       /* one call, two tokens */
    CHECK_OK(bw_limiter_try_acquire(l, 1, NULL));
    CHECK_STATUS(bw_limiter_try_acquire(l, 1, NULL), BW_RATE_LIMITED);
    CHECK_STATUS(bw_limiter_try_acquire(l, 4, NULL), BW_NEVER_PASSES); /* an error, not counted */
    bw_reservation r;
    CHECK_OK(bw_limiter_reserve(l, 1, 1000000000ULL, &r, NULL));
    CHECK_STATUS(bw_limiter_reserve(l, 1, 0, &r, NULL), BW_RATE_LIMITED);
    CHECK_OK(bw_limiter_acquire(l, 0, 0, NULL));          /* zero tokens pass at once */
    bw_metrics m;
    CHECK_STATUS(bw_limiter_get_metrics(NULL, &m), BW_NULL_POINTER);
    CHECK_STATUS(bw_limiter_get_metrics(l, NULL), BW_NULL_POINTER);
    CHECK_OK(bw_limiter_get_metrics(l, &m));
    CHECK(m.permitted == 4 && m.rejected == 2);
    CHECK(m.success + m.failure + m.timeout + m.ignored == 0 && m.latency_count == 0);
    bw_limiter_free(l);
    bw_clock_free(clock);
}
