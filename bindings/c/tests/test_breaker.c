/* Standalone circuit breaker: builder, every error path, a manual-clock scenario
 * (trips, half-opens, closes), manual controls, stats, and the transition listener. */
#include <math.h>
#include <stdlib.h>
#include "bw_test.h"

static bw_breaker *breaker_with(bw_breaker_config *config, bw_clock *clock) {
    bw_breaker *breaker = NULL;
    CHECK_OK(bw_breaker_new(config, clock, &breaker));
    return breaker;
}

void test_breaker_config_errors(void) {
    bw_breaker_config *config = NULL;
    bw_breaker *breaker = NULL;
    CHECK_STATUS(bw_breaker_config_new(NULL), BW_NULL_POINTER);
    CHECK_OK(bw_breaker_config_new(&config));
    /* Every setter checks its handle. */
    CHECK_STATUS(bw_breaker_config_set_count_window(NULL, 10), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_time_window(NULL, 1000, 2), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_minimum_calls(NULL, 1), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_failure_rate_threshold(NULL, 50), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_slow_calls(NULL, 1000, 50), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_consecutive_failures(NULL, 3), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_open_duration(NULL, 1000), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_open_backoff(NULL, 2.0, 1000), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_open_jitter(NULL, 0.1, 7), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_config_set_half_open(NULL, 1, 1000), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_new(NULL, NULL, &breaker), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_new(config, NULL, NULL), BW_NULL_POINTER);
    /* Invalid values are stored, then refused by bw_breaker_new naming the field. */
    CHECK_OK(bw_breaker_config_set_count_window(config, 0));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("window.size");
    CHECK(breaker == NULL);
    CHECK_OK(bw_breaker_config_set_count_window(config, 100));
    CHECK_OK(bw_breaker_config_set_time_window(config, 10, 17));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("window.buckets");
    CHECK_OK(bw_breaker_config_set_count_window(config, 100));
    CHECK_OK(bw_breaker_config_set_failure_rate_threshold(config, 150.0));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("failure_rate_threshold");
    CHECK_OK(bw_breaker_config_set_failure_rate_threshold(config, NAN));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("failure_rate_threshold");
    CHECK_OK(bw_breaker_config_set_failure_rate_threshold(config, 50.0));
    CHECK_OK(bw_breaker_config_set_minimum_calls(config, 101));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("minimum_calls");
    CHECK_OK(bw_breaker_config_set_minimum_calls(config, 10));
    CHECK_OK(bw_breaker_config_set_slow_calls(config, 0, 50.0));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("slow_call_duration");
    CHECK_OK(bw_breaker_config_set_slow_calls(config, 1000000, 0.0));
    CHECK_OK(bw_breaker_config_set_open_duration(config, 0));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("open_duration");
    CHECK_OK(bw_breaker_config_set_open_duration(config, 1000000000ULL));
    CHECK_OK(bw_breaker_config_set_open_backoff(config, 0.5, 2000000000ULL));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("open_backoff_multiplier");
    CHECK_OK(bw_breaker_config_set_open_backoff(config, 2.0, 10));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("max_open_duration");
    CHECK_OK(bw_breaker_config_set_open_backoff(config, 1.0, 0));
    CHECK_OK(bw_breaker_config_set_open_jitter(config, 1.5, 1));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("open_jitter");
    CHECK_OK(bw_breaker_config_set_open_jitter(config, 0.0, 1));
    CHECK_OK(bw_breaker_config_set_half_open(config, 0, 1000));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("half_open_permits");
    CHECK_OK(bw_breaker_config_set_half_open(config, 1, 0));
    CHECK_STATUS(bw_breaker_new(config, NULL, &breaker), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("half_open_max_wait");
    CHECK_OK(bw_breaker_config_set_half_open(config, 1, 1000000000ULL));
    CHECK_OK(bw_breaker_config_set_consecutive_failures(config, 0));
    CHECK(breaker == NULL);
    breaker = breaker_with(config, NULL);
    CHECK(breaker != NULL);
    bw_breaker_free(breaker);
    bw_breaker_config_free(config);
    bw_breaker_config_free(NULL);
    bw_breaker_free(NULL);
    CHECK(bw_breaker_clone(NULL) == NULL);
}

void test_breaker_null_arguments(void) {
    bw_breaker_config *config = NULL;
    CHECK_OK(bw_breaker_config_new(&config));
    bw_breaker *b = breaker_with(config, NULL);
    bw_breaker_permit permit;
    bw_breaker_stats stats;
    CHECK_STATUS(bw_breaker_try_acquire(NULL, &permit, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_try_acquire(b, NULL, NULL), BW_NULL_POINTER);
    CHECK_OK(bw_breaker_try_acquire(b, &permit, NULL));
    CHECK_STATUS(bw_breaker_complete(NULL, &permit, BW_OUTCOME_SUCCESS, 0), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_complete(b, NULL, BW_OUTCOME_SUCCESS, 0), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_complete(b, &permit, 4, 0), BW_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("outcome");
    CHECK_STATUS(bw_breaker_complete(b, &permit, -1, 0), BW_INVALID_ARGUMENT);
    CHECK_OK(bw_breaker_complete(b, &permit, BW_OUTCOME_SUCCESS, 0)); /* still live */
    CHECK(bw_breaker_state(NULL) == -1);
    CHECK_STATUS(bw_breaker_force_open(NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_disable(NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_reset(NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_get_stats(NULL, &stats), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_get_stats(b, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_set_listener(NULL, NULL, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_breaker_set_listener(b, NULL, NULL), BW_NULL_POINTER);
    CHECK_ERROR_MENTIONS("callback");
    bw_breaker_free(b);
    bw_breaker_config_free(config);
}

void test_breaker_permit_double_use(void) {
    bw_breaker_config *config = NULL;
    CHECK_OK(bw_breaker_config_new(&config));
    bw_breaker *a = breaker_with(config, NULL);
    bw_breaker *b = breaker_with(config, NULL);
    bw_breaker_permit permit;
    CHECK_OK(bw_breaker_try_acquire(a, &permit, NULL));
    CHECK(!(permit.flags & BW_PERMIT_PROBE));
    CHECK_STATUS(bw_breaker_complete(b, &permit, BW_OUTCOME_SUCCESS, 0), BW_WRONG_HANDLE);
    CHECK_OK(bw_breaker_complete(a, &permit, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_STATUS(bw_breaker_complete(a, &permit, BW_OUTCOME_SUCCESS, 0), BW_PERMIT_ALREADY_USED);
    bw_breaker_permit garbage;
    memset(&garbage, 0x5a, sizeof garbage);
    CHECK_STATUS(bw_breaker_complete(a, &garbage, BW_OUTCOME_FAILURE, 0), BW_INVALID_ARGUMENT);
    bw_breaker_stats stats;
    CHECK_OK(bw_breaker_get_stats(a, &stats));
    CHECK(stats.calls == 1 && stats.failures == 0);
    bw_breaker_free(a);
    bw_breaker_free(b);
    bw_breaker_config_free(config);
}

void test_breaker_scenario(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_breaker_config *config = NULL;
    CHECK_OK(bw_breaker_config_new(&config));
    CHECK_OK(bw_breaker_config_set_count_window(config, 10));
    CHECK_OK(bw_breaker_config_set_minimum_calls(config, 4));
    CHECK_OK(bw_breaker_config_set_failure_rate_threshold(config, 50.0));
    CHECK_OK(bw_breaker_config_set_open_duration(config, 10000000000ULL));
    CHECK_OK(bw_breaker_config_set_half_open(config, 2, 60000000000ULL));
    bw_breaker *b = breaker_with(config, clock);
    bw_breaker_config_free(config); /* the breaker keeps its own copy */
    bw_breaker_permit permit;
    bw_breaker_stats stats;
    CHECK(bw_breaker_state(b) == BW_BREAKER_CLOSED);
    for (int i = 0; i < 4; i++) {
        CHECK_OK(bw_breaker_try_acquire(b, &permit, NULL));
        CHECK_OK(bw_breaker_complete(b, &permit, i < 2 ? BW_OUTCOME_SUCCESS : BW_OUTCOME_FAILURE, 1000));
    }
    CHECK(bw_breaker_state(b) == BW_BREAKER_OPEN);
    uint64_t after = 0;
    bw_breaker_permit untouched;
    memset(&untouched, 0x11, sizeof untouched);
    CHECK_STATUS(bw_breaker_try_acquire(b, &untouched, &after), BW_CIRCUIT_OPEN);
    CHECK(untouched.instance == 0x1111111111111111ULL);
    CHECK(after <= 10000000000ULL && after > 10000000000ULL - 256);
    CHECK_OK(bw_breaker_get_stats(b, &stats));
    CHECK(stats.state == BW_BREAKER_OPEN && stats.transitions_to_open == 1);
    CHECK(stats.retry_after_ns <= 10000000000ULL && stats.retry_after_ns > 10000000000ULL - 256);
    CHECK(stats.open_until_ns > 1000);
    CHECK_OK(bw_clock_advance(clock, 10000000000ULL));
    bw_breaker_permit p1, p2, extra;
    CHECK_OK(bw_breaker_try_acquire(b, &p1, NULL));
    CHECK(p1.flags & BW_PERMIT_PROBE);
    CHECK(bw_breaker_state(b) == BW_BREAKER_HALF_OPEN);
    CHECK_OK(bw_breaker_try_acquire(b, &p2, NULL));
    CHECK_STATUS(bw_breaker_try_acquire(b, &extra, NULL), BW_CIRCUIT_OPEN);
    CHECK_OK(bw_breaker_get_stats(b, &stats));
    CHECK(stats.half_open_in_flight == 2);
    CHECK_OK(bw_breaker_complete(b, &p1, BW_OUTCOME_SUCCESS, 1000));
    CHECK_OK(bw_breaker_complete(b, &p2, BW_OUTCOME_SUCCESS, 1000));
    CHECK(bw_breaker_state(b) == BW_BREAKER_CLOSED);
    CHECK_OK(bw_breaker_get_stats(b, &stats));
    CHECK(stats.transitions_to_open == 1 && stats.transitions_to_half_open == 1);
    CHECK(stats.transitions_to_closed == 1);
    CHECK(stats.generation == 3);
    CHECK(stats.calls == 0); /* a fresh window */
    /* Manual controls. */
    CHECK_OK(bw_breaker_force_open(b));
    CHECK(bw_breaker_state(b) == BW_BREAKER_FORCED_OPEN);
    CHECK_STATUS(bw_breaker_try_acquire(b, &permit, NULL), BW_CIRCUIT_OPEN);
    CHECK_OK(bw_breaker_disable(b));
    CHECK(bw_breaker_state(b) == BW_BREAKER_DISABLED);
    for (int i = 0; i < 20; i++) {
        CHECK_OK(bw_breaker_try_acquire(b, &permit, NULL));
        CHECK_OK(bw_breaker_complete(b, &permit, BW_OUTCOME_FAILURE, 1000));
    }
    CHECK(bw_breaker_state(b) == BW_BREAKER_DISABLED);
    CHECK_OK(bw_breaker_reset(b));
    CHECK(bw_breaker_state(b) == BW_BREAKER_CLOSED);
    /* A permit from before the reset is stale: counted, otherwise ignored. */
    CHECK_OK(bw_breaker_try_acquire(b, &permit, NULL));
    CHECK_OK(bw_breaker_force_open(b));
    CHECK_OK(bw_breaker_reset(b));
    CHECK_OK(bw_breaker_complete(b, &permit, BW_OUTCOME_FAILURE, 1000));
    CHECK_OK(bw_breaker_get_stats(b, &stats));
    CHECK(stats.stale_outcomes == 1 && stats.calls == 0);
    bw_breaker *copy = bw_breaker_clone(b);
    CHECK(copy == b);
    bw_breaker_free(copy);
    bw_breaker_free(b);
    bw_clock_free(clock);
}

struct transitions {
    int count;
    int last_from, last_to;
    uint64_t last_generation;
    size_t name_len;
};

static void on_breaker_event(const bw_event *event, void *user_data) {
    struct transitions *t = user_data;
    if (event->kind != BW_EVENT_TRANSITION) return;
    t->count++;
    t->last_from = event->from_state;
    t->last_to = event->to_state;
    t->last_generation = event->generation;
    t->name_len = event->policy_len;
}

static void other_listener(const bw_event *event, void *user_data) {
    (void)event;
    (*(int *)user_data)++;
}

void test_breaker_listener(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    bw_breaker_config *config = NULL;
    CHECK_OK(bw_breaker_config_new(&config));
    CHECK_OK(bw_breaker_config_set_count_window(config, 4));
    CHECK_OK(bw_breaker_config_set_minimum_calls(config, 2));
    CHECK_OK(bw_breaker_config_set_half_open(config, 1, 1000000000ULL));
    bw_breaker *b = breaker_with(config, clock);
    struct transitions seen = {0, -1, -1, 0, 99};
    int other = 0;
    CHECK_OK(bw_breaker_set_listener(b, on_breaker_event, &seen));
    CHECK_STATUS(bw_breaker_set_listener(b, other_listener, &other), BW_ALREADY_SET);
    bw_breaker_permit permit;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(bw_breaker_try_acquire(b, &permit, NULL));
        CHECK_OK(bw_breaker_complete(b, &permit, BW_OUTCOME_FAILURE, 1000));
    }
    CHECK(seen.count == 1);
    CHECK(seen.last_from == BW_BREAKER_CLOSED && seen.last_to == BW_BREAKER_OPEN);
    CHECK(seen.last_generation == 1);
    CHECK(seen.name_len == 0);
    CHECK_OK(bw_breaker_force_open(b));
    CHECK_OK(bw_breaker_force_open(b)); /* again: a new generation, so a transition too */
    CHECK_OK(bw_breaker_reset(b));
    CHECK(seen.count == 4);
    CHECK(seen.last_generation == 4);
    CHECK(seen.last_to == BW_BREAKER_CLOSED);
    CHECK(other == 0);
    bw_breaker_free(b);
    bw_breaker_config_free(config);
    bw_clock_free(clock);
}

void test_breaker_create_free_loop(void) {
    for (int i = 0; i < 200; i++) {
        bw_breaker_config *config = NULL;
        CHECK_OK(bw_breaker_config_new(&config));
        CHECK_OK(bw_breaker_config_set_time_window(config, 1000000000ULL, 10));
        bw_breaker *b = NULL;
        CHECK_OK(bw_breaker_new(config, NULL, &b));
        bw_breaker *c = bw_breaker_clone(b);
        int dummy = 0;
        CHECK_OK(bw_breaker_set_listener(b, other_listener, &dummy));
        bw_breaker_free(b);
        bw_breaker_config_free(config);
        bw_breaker_free(c);
    }
}

/* The exact counters (bw_metrics): acquires, rejections, outcomes, slow calls, latency. */
void test_breaker_metrics(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_breaker_config *config = NULL;
    CHECK_OK(bw_breaker_config_new(&config));
    CHECK_OK(bw_breaker_config_set_count_window(config, 4));
    CHECK_OK(bw_breaker_config_set_minimum_calls(config, 4));
    CHECK_OK(bw_breaker_config_set_failure_rate_threshold(config, 50.0));
    CHECK_OK(bw_breaker_config_set_slow_calls(config, 5000000ULL, 100.0)); /* slow from 5 ms */
    bw_breaker *b = breaker_with(config, clock);
    bw_breaker_config_free(config);
    bw_metrics m;
    memset(&m, 0x33, sizeof m);
    CHECK_STATUS(bw_breaker_get_metrics(NULL, &m), BW_NULL_POINTER);
    CHECK(m.permitted == 0x3333333333333333ULL); /* nothing written */
    CHECK_STATUS(bw_breaker_get_metrics(b, NULL), BW_NULL_POINTER);
    CHECK_ERROR_MENTIONS("`out`");
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
