/* Policies through the C ABI: permits by value, every error path, scenarios with the
 * manual clock, and four threads hammering one policy. */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include "bw_test.h"

static bw_engine *engine_with(const char *toml, bw_clock *clock) {
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(toml, clock, &engine));
    return engine;
}

static bw_policy *policy_of(bw_engine *engine, const char *name) {
    bw_policy *policy = NULL;
    CHECK_OK(bw_engine_policy(engine, name, &policy));
    return policy;
}

void test_policy_acquire_complete(void) {
    bw_engine *engine = engine_with("[policies.p.bulkhead]\nmax_concurrent = 1\n", NULL);
    bw_policy *p = policy_of(engine, "p");
    bw_permit permit;
    memset(&permit, 0, sizeof permit);
    uint64_t after = 12345;
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, &after));
    CHECK(after == 12345); /* untouched when permitted */
    CHECK(permit.flags & BW_PERMIT_BULKHEAD);
    CHECK(!(permit.flags & BW_PERMIT_INJECTED_FAILURE));
    bw_permit second;
    CHECK_STATUS(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &second, &after), BW_BULKHEAD_FULL);
    CHECK_OK(bw_policy_complete(p, &permit, BW_OUTCOME_SUCCESS, 2000));
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_CRITICAL, &second, NULL));
    CHECK_OK(bw_policy_complete(p, &second, BW_OUTCOME_IGNORED, BW_DURATION_UNKNOWN));
    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(p, &stats));
    CHECK(stats.permitted == 2);
    CHECK(stats.success == 1);
    CHECK(stats.ignored == 1);
    CHECK(stats.rejected_bulkhead_full == 1);
    CHECK(stats.breaker_state == -1); /* no breaker */
    bw_policy *copy = bw_policy_clone(p);
    CHECK(copy == p);
    bw_policy_free(copy);
    bw_policy_free(p);
    bw_engine_free(engine);
}

void test_policy_bad_enums_and_double_use(void) {
    bw_engine *engine = engine_with(
        "[policies.a.bulkhead]\nmax_concurrent = 4\n[policies.b.bulkhead]\nmax_concurrent = 4\n", NULL);
    bw_policy *a = policy_of(engine, "a");
    bw_policy *b = policy_of(engine, "b");
    bw_permit permit;
    CHECK_STATUS(bw_policy_acquire(NULL, BW_PRIORITY_DEFAULT, &permit, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_acquire(a, BW_PRIORITY_DEFAULT, NULL, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_acquire(a, 7, &permit, NULL), BW_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("priority");
    CHECK_STATUS(bw_policy_acquire(a, -1, &permit, NULL), BW_INVALID_ARGUMENT);
    CHECK_OK(bw_policy_acquire(a, BW_PRIORITY_SHEDDABLE, &permit, NULL));
    CHECK_STATUS(bw_policy_complete(a, &permit, 4, 0), BW_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("outcome");
    CHECK_STATUS(bw_policy_complete(a, &permit, -3, 0), BW_INVALID_ARGUMENT);
    CHECK_STATUS(bw_policy_complete(NULL, &permit, BW_OUTCOME_SUCCESS, 0), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_complete(a, NULL, BW_OUTCOME_SUCCESS, 0), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_complete(b, &permit, BW_OUTCOME_SUCCESS, 0), BW_WRONG_HANDLE);
    /* After all those errors the permit is still live, and completes once. */
    CHECK_OK(bw_policy_complete(a, &permit, BW_OUTCOME_FAILURE, 0));
    CHECK_STATUS(bw_policy_complete(a, &permit, BW_OUTCOME_SUCCESS, 0), BW_PERMIT_ALREADY_USED);
    /* A permit never filled by acquire. */
    bw_permit garbage;
    memset(&garbage, 0xab, sizeof garbage);
    CHECK_STATUS(bw_policy_complete(a, &garbage, BW_OUTCOME_SUCCESS, 0), BW_INVALID_ARGUMENT);
    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(a, &stats));
    CHECK(stats.permitted == 1 && stats.failure == 1 && stats.success == 0);
    CHECK_STATUS(bw_policy_get_stats(a, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_get_stats(NULL, &stats), BW_NULL_POINTER);
    bw_policy_free(a);
    bw_policy_free(b);
    bw_engine_free(engine);
}

void test_policy_breaker_scenario(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    bw_engine *engine = engine_with(
        "[policies.pay.circuit_breaker]\n"
        "failure_rate_threshold = 50\n"
        "minimum_calls = 4\n"
        "window = { type = \"count\", size = 10 }\n"
        "open_duration = \"10s\"\n"
        "half_open_permits = 2\n",
        clock);
    bw_policy *p = policy_of(engine, "pay");
    bw_permit permit;
    bw_policy_stats stats;
    /* Closed: 2 successes, 2 failures = 50 % of 4 calls: trips. */
    for (int i = 0; i < 4; i++) {
        CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL));
        CHECK(permit.flags & BW_PERMIT_BREAKER);
        CHECK_OK(bw_policy_complete(p, &permit, i < 2 ? BW_OUTCOME_SUCCESS : BW_OUTCOME_FAILURE, 1000));
    }
    CHECK_OK(bw_policy_get_stats(p, &stats));
    CHECK(stats.breaker_state == BW_BREAKER_OPEN);
    uint64_t after = 0;
    CHECK_STATUS(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, &after), BW_CIRCUIT_OPEN);
    /* The breaker stores open-period ends to 256 ns (rounded down). */
    CHECK(after <= 10000000000ULL && after > 10000000000ULL - 256);
    CHECK_OK(bw_clock_advance(clock, 4000000000ULL));
    CHECK_STATUS(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, &after), BW_CIRCUIT_OPEN);
    CHECK(after <= 6000000000ULL && after > 6000000000ULL - 256);
    /* After open_duration: half-open, two probes. */
    CHECK_OK(bw_clock_advance(clock, 6000000000ULL));
    bw_permit probe1, probe2, extra;
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &probe1, NULL));
    CHECK(probe1.flags & BW_PERMIT_PROBE);
    CHECK_OK(bw_policy_get_stats(p, &stats));
    CHECK(stats.breaker_state == BW_BREAKER_HALF_OPEN);
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &probe2, NULL));
    CHECK_STATUS(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &extra, NULL), BW_CIRCUIT_OPEN);
    CHECK_OK(bw_policy_complete(p, &probe1, BW_OUTCOME_SUCCESS, 1000));
    CHECK_OK(bw_policy_complete(p, &probe2, BW_OUTCOME_SUCCESS, 1000));
    CHECK_OK(bw_policy_get_stats(p, &stats));
    CHECK(stats.breaker_state == BW_BREAKER_CLOSED);
    CHECK(stats.transitions_to_open == 1);
    CHECK(stats.transitions_to_half_open == 1);
    CHECK(stats.transitions_to_closed == 1);
    CHECK(stats.rejected_circuit_open == 3);
    bw_policy_free(p);
    bw_engine_free(engine);
    bw_clock_free(clock);
}

void test_policy_limiter_scenario(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_engine *engine = engine_with(
        "[policies.api.rate_limiter]\nrate = 10\nperiod = \"1s\"\nburst = 5\n", clock);
    bw_policy *p = policy_of(engine, "api");
    bw_permit permit;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL));
        CHECK_OK(bw_policy_complete(p, &permit, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    }
    uint64_t after = 0;
    CHECK_STATUS(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, &after), BW_RATE_LIMITED);
    CHECK(after == 100000000ULL); /* one emission interval: 1 s / 10 */
    CHECK_OK(bw_clock_advance(clock, 40000000ULL));
    CHECK_STATUS(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, &after), BW_RATE_LIMITED);
    CHECK(after == 60000000ULL);
    CHECK_OK(bw_clock_advance(clock, 60000000ULL));
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK_OK(bw_policy_complete(p, &permit, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_STATUS(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, &after), BW_RATE_LIMITED);
    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(p, &stats));
    CHECK(stats.permitted == 6 && stats.rejected_rate_limited == 3);
    bw_policy_free(p);
    bw_engine_free(engine);
    bw_clock_free(clock);
}

/* More threads than the 64 metrics slots any machine hands out: some threads record
 * into their own shard with plain stores, the rest into the shared one; counts stay exact. */
#define THREADS 72
#define CALLS_PER_THREAD 2000

struct hammer {
    bw_policy *policy;
    int index;
    uint64_t permitted, rejected;
};

static void *hammer(void *arg) {
    struct hammer *h = arg;
    for (int i = 0; i < CALLS_PER_THREAD; i++) {
        bw_permit permit;
        int status = bw_policy_acquire(h->policy, BW_PRIORITY_DEFAULT, &permit, NULL);
        if (status == BW_OK) {
            h->permitted++;
            int outcome = (i + h->index) % 3 == 0 ? BW_OUTCOME_FAILURE : BW_OUTCOME_SUCCESS;
            if (bw_policy_complete(h->policy, &permit, outcome, 1000) != BW_OK) {
                abort();
            }
        } else if (status == BW_BULKHEAD_FULL) {
            h->rejected++;
        } else {
            abort();
        }
    }
    return NULL;
}

void test_policy_threads_exact_counts(void) {
    bw_engine *engine = engine_with("[policies.hot.bulkhead]\nmax_concurrent = 2\n", NULL);
    bw_policy *p = policy_of(engine, "hot");
    pthread_t threads[THREADS];
    struct hammer state[THREADS];
    for (int i = 0; i < THREADS; i++) {
        state[i] = (struct hammer){.policy = p, .index = i, .permitted = 0, .rejected = 0};
        CHECK(pthread_create(&threads[i], NULL, hammer, &state[i]) == 0);
    }
    uint64_t permitted = 0, rejected = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        permitted += state[i].permitted;
        rejected += state[i].rejected;
    }
    CHECK(permitted + rejected == (uint64_t)THREADS * CALLS_PER_THREAD);
    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(p, &stats));
    CHECK(stats.permitted == permitted);
    CHECK(stats.rejected_bulkhead_full == rejected);
    CHECK(stats.success + stats.failure == permitted);
    CHECK(stats.bulkhead_in_flight == 0);
    bw_policy_free(p);
    bw_engine_free(engine);
}

void test_policy_timeout(void) {
    bw_engine *engine = engine_with(
        "[policies.t]\ntimeout = \"250ms\"\n[policies.t.bulkhead]\nmax_concurrent = 1\n"
        "[policies.n.bulkhead]\nmax_concurrent = 1\n", NULL);
    bw_policy *t = policy_of(engine, "t");
    bw_policy *n = policy_of(engine, "n");
    uint64_t timeout = 7;
    CHECK_OK(bw_policy_timeout(t, &timeout));
    CHECK(timeout == 250000000u);
    CHECK_OK(bw_policy_timeout(n, &timeout));
    CHECK(timeout == 0); /* no timeout */
    timeout = 7;
    CHECK_STATUS(bw_policy_timeout(NULL, &timeout), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_timeout(t, NULL), BW_NULL_POINTER);
    CHECK(timeout == 7); /* untouched on failure */
    bw_policy_free(n);
    bw_policy_free(t);
    bw_engine_free(engine);
}

/* bw_policy_acquire_within: a full bulkhead with a max_wait refuses uncounted while the
 * caller waits in slices; the call is counted once (here: by the last ask). */
void test_policy_acquire_within(void) {
    bw_engine *engine = engine_with(
        "[policies.w.bulkhead]\nmax_concurrent = 1\nmax_wait = \"1h\"\n"
        "[policies.k.per_key]\nrate = 100\nperiod = \"1s\"\nmax_concurrent = 1\nmax_keys = 8\n"
        "[policies.k.bulkhead]\nmax_concurrent = 4\nmax_wait = \"1h\"\n"
        "[policies.n.bulkhead]\nmax_concurrent = 1\n", NULL);
    bw_policy *w = policy_of(engine, "w");
    bw_policy *k = policy_of(engine, "k");
    bw_policy *n = policy_of(engine, "n");
    uint64_t max_wait = 7, retry_after = 7;
    CHECK_OK(bw_policy_bulkhead_max_wait(w, &max_wait));
    CHECK(max_wait == 3600000000000u);
    CHECK_OK(bw_policy_bulkhead_max_wait(n, &max_wait));
    CHECK(max_wait == 0); /* a bulkhead that never waits */
    max_wait = 7;
    CHECK_STATUS(bw_policy_bulkhead_max_wait(NULL, &max_wait), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_bulkhead_max_wait(w, NULL), BW_NULL_POINTER);
    CHECK(max_wait == 7);

    bw_keyed_permit held, waiter;
    CHECK_OK(bw_policy_acquire_within(w, NULL, 0, false, BW_PRIORITY_DEFAULT, NULL, 0, false,
                                      &held, &retry_after, &max_wait));
    CHECK(max_wait == 0);
    /* Full: two slices refused uncounted, then the last ask counts the call once. */
    for (int i = 0; i < 2; i++) {
        CHECK_STATUS(bw_policy_acquire_within(w, NULL, 0, false, BW_PRIORITY_DEFAULT, NULL,
                                              1000000u, false, &waiter, &retry_after, &max_wait),
                     BW_BULKHEAD_FULL);
        CHECK(max_wait == 3600000000000u);
    }
    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(w, &stats));
    CHECK(stats.rejected_bulkhead_full == 0 && stats.permitted == 1);
    CHECK_STATUS(bw_policy_acquire_within(w, NULL, 0, false, BW_PRIORITY_DEFAULT, NULL, 0, true,
                                          &waiter, &retry_after, &max_wait),
                 BW_BULKHEAD_FULL);
    CHECK(max_wait == 0);
    CHECK_OK(bw_policy_get_stats(w, &stats));
    CHECK(stats.rejected_bulkhead_full == 1 && stats.permitted == 1);
    CHECK_OK(bw_policy_complete(w, &held.permit, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_OK(bw_policy_get_stats(w, &stats));
    CHECK(stats.bulkhead_in_flight == 0);

    /* Keyed: the key's own max_concurrent is a counted refusal, never a wait. */
    CHECK_OK(bw_policy_acquire_within(k, (const uint8_t *)"a", 1, true, BW_PRIORITY_DEFAULT,
                                      NULL, 0, false, &held, &retry_after, &max_wait));
    CHECK_STATUS(bw_policy_acquire_within(k, (const uint8_t *)"a", 1, true, BW_PRIORITY_DEFAULT,
                                          NULL, 0, false, &waiter, &retry_after, &max_wait),
                 BW_BULKHEAD_FULL);
    CHECK(max_wait == 0);
    CHECK_OK(bw_policy_get_stats(k, &stats));
    CHECK(stats.rejected_bulkhead_full == 1);
    CHECK_OK(bw_policy_complete_keyed(k, &held, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_OK(bw_policy_acquire_within(k, (const uint8_t *)"a", 1, true, BW_PRIORITY_DEFAULT,
                                      NULL, 0, false, &held, &retry_after, &max_wait));
    CHECK_OK(bw_policy_complete_keyed(k, &held, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));

    CHECK_STATUS(bw_policy_acquire_within(NULL, NULL, 0, false, BW_PRIORITY_DEFAULT, NULL, 0,
                                          false, &held, NULL, NULL),
                 BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_acquire_within(k, NULL, 3, true, BW_PRIORITY_DEFAULT, NULL, 0,
                                          false, &held, NULL, NULL),
                 BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_acquire_within(w, NULL, 0, false, 99, NULL, 0, false, &held, NULL,
                                          NULL),
                 BW_INVALID_ARGUMENT);
    bw_trace_context zero = {0};
    CHECK_STATUS(bw_policy_acquire_within(w, NULL, 0, false, BW_PRIORITY_DEFAULT, &zero, 0,
                                          false, &held, NULL, NULL),
                 BW_INVALID_ARGUMENT);
    bw_policy_free(n);
    bw_policy_free(k);
    bw_policy_free(w);
    bw_engine_free(engine);
}

/* The permit's layout is the stable one the bindings copy: 64 bytes, opaque words, then
 * the caller-visible fields at fixed offsets. */
void test_policy_permit_layout(void) {
    CHECK(sizeof(bw_permit) == 64);
    CHECK(sizeof(((bw_permit *)0)->opaque) == 6 * sizeof(uint64_t));
    CHECK(offsetof(bw_permit, injected_latency_ns) == 48);
    CHECK(offsetof(bw_permit, flags) == 56);
    CHECK(offsetof(bw_permit, reserved) == 60);
    bw_engine *engine = engine_with("[policies.p.bulkhead]\nmax_concurrent = 1\n", NULL);
    bw_policy *p = policy_of(engine, "p");
    bw_permit permit;
    memset(&permit, 0xff, sizeof permit);
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK(permit.reserved == 0);
    CHECK(permit.injected_latency_ns == 0);
    CHECK(permit.flags == BW_PERMIT_BULKHEAD);
    CHECK_OK(bw_policy_complete(p, &permit, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    bw_policy_free(p);
    bw_engine_free(engine);
}

/* A zeroed or forged permit is refused with a status and completes nothing (changed
 * opaque words are tested in src/ffi/policy.rs, which knows them); the flags are the
 * caller's to read and completion does not trust them. */
void test_policy_forged_permits_are_refused(void) {
    bw_engine *engine = engine_with("[policies.p.bulkhead]\nmax_concurrent = 1\n", NULL);
    bw_policy *p = policy_of(engine, "p");
    bw_permit zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    CHECK_STATUS(bw_policy_complete(p, &zeroed, BW_OUTCOME_SUCCESS, 0), BW_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("not filled");
    bw_permit garbage;
    memset(&garbage, 0x5a, sizeof garbage);
    CHECK_STATUS(bw_policy_complete(p, &garbage, BW_OUTCOME_SUCCESS, 0), BW_INVALID_ARGUMENT);
    bw_permit permit;
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL));
    bw_permit flipped = permit;
    flipped.flags = 0;
    CHECK_OK(bw_policy_complete(p, &flipped, BW_OUTCOME_SUCCESS, 0));
    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(p, &stats));
    CHECK(stats.bulkhead_in_flight == 0); /* the bulkhead slot came back all the same */
    CHECK(stats.permitted == stats.success);
    bw_policy_free(p);
    bw_engine_free(engine);
}

/* Injected latency has its own flag, set exactly when injected_latency_ns is not 0. */
void test_policy_injected_latency_flag(void) {
    bw_engine *engine = engine_with(
        "[policies.slow.chaos]\nenabled = true\nlatency_probability = 1.0\nlatency = \"5ms\"\n"
        "[policies.plain.chaos]\nenabled = true\nfailure_probability = 1.0\n", NULL);
    bw_policy *slow = policy_of(engine, "slow");
    bw_policy *plain = policy_of(engine, "plain");
    bw_permit permit;
    CHECK_OK(bw_policy_acquire(slow, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK(permit.flags & BW_PERMIT_INJECTED_LATENCY);
    CHECK(permit.injected_latency_ns == 5000000);
    CHECK(!(permit.flags & BW_PERMIT_INJECTED_FAILURE));
    CHECK_OK(bw_policy_complete(slow, &permit, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_OK(bw_policy_acquire(plain, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK(!(permit.flags & BW_PERMIT_INJECTED_LATENCY));
    CHECK(permit.injected_latency_ns == 0);
    CHECK(permit.flags & BW_PERMIT_INJECTED_FAILURE);
    CHECK_OK(bw_policy_complete(plain, &permit, BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN));
    bw_policy_free(slow);
    bw_policy_free(plain);
    bw_engine_free(engine);
}
