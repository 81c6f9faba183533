/* The retry schedule: bw_backoff_delay bounds and purity, bw_retry_state give-up
 * rules (attempts, deadline, max_elapsed, budget, retry-after), bw_retry_budget. */
#include "bw_test.h"

#define MS 1000000ULL

static bw_retry_config *retry_config(uint32_t attempts, int32_t jitter) {
    bw_retry_config *config = NULL;
    CHECK_OK(bw_retry_config_new(&config));
    CHECK_OK(bw_retry_config_set_max_attempts(config, attempts));
    CHECK_OK(bw_retry_config_set_backoff(config, 100 * MS, 2.0, 1000 * MS));
    CHECK_OK(bw_retry_config_set_jitter(config, jitter));
    return config;
}

void test_retry_config_errors(void) {
    bw_retry_config *config = NULL;
    bw_retry_state *state = NULL;
    uint64_t rng = 1, delay = 0;
    CHECK_STATUS(bw_retry_config_new(NULL), BW_NULL_POINTER);
    CHECK_OK(bw_retry_config_new(&config));
    CHECK_STATUS(bw_retry_config_set_max_attempts(NULL, 1), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_config_set_backoff(NULL, 1, 1, 1), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_config_set_jitter(NULL, BW_JITTER_FULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_config_set_max_elapsed(NULL, 1), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_config_set_jitter(config, 4), BW_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("jitter");
    CHECK_STATUS(bw_retry_config_set_jitter(config, -1), BW_INVALID_ARGUMENT);
    CHECK_STATUS(bw_retry_config_set_jitter(config, 256), BW_INVALID_ARGUMENT);
    CHECK_STATUS(bw_retry_state_new(NULL, 1, 1, 0, &state), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_state_new(config, 1, 1, 0, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_backoff_delay(NULL, 1, 0, &rng, &delay), BW_NULL_POINTER);
    CHECK_STATUS(bw_backoff_delay(config, 1, 0, NULL, &delay), BW_NULL_POINTER);
    CHECK_STATUS(bw_backoff_delay(config, 1, 0, &rng, NULL), BW_NULL_POINTER);
    CHECK_OK(bw_retry_config_set_max_attempts(config, 0));
    CHECK_STATUS(bw_retry_state_new(config, 1, 1, 0, &state), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("max_attempts");
    CHECK_OK(bw_retry_config_set_max_attempts(config, 3));
    CHECK_OK(bw_retry_config_set_backoff(config, 0, 2.0, 1000));
    CHECK_STATUS(bw_retry_state_new(config, 1, 1, 0, &state), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("backoff.initial");
    rng = 5; delay = 9;
    CHECK_STATUS(bw_backoff_delay(config, 1, 0, &rng, &delay), BW_INVALID_CONFIG);
    CHECK(rng == 5 && delay == 9); /* untouched */
    CHECK_OK(bw_retry_config_set_backoff(config, 100, 0.5, 1000));
    CHECK_STATUS(bw_backoff_delay(config, 1, 0, &rng, &delay), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("backoff.multiplier");
    CHECK_OK(bw_retry_config_set_backoff(config, 100, 2.0, 10));
    CHECK_STATUS(bw_backoff_delay(config, 1, 0, &rng, &delay), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("backoff.max");
    CHECK(state == NULL);
    bw_retry_config_free(config);
    bw_retry_config_free(NULL);
    bw_retry_state_free(NULL);
    CHECK(bw_retry_state_attempts(NULL) == 0);
}

void test_retry_backoff_bounds(void) {
    bw_retry_config *none = retry_config(10, BW_JITTER_NONE);
    bw_retry_config *full = retry_config(10, BW_JITTER_FULL);
    bw_retry_config *equal = retry_config(10, BW_JITTER_EQUAL);
    bw_retry_config *decor = retry_config(10, BW_JITTER_DECORRELATED);
    uint64_t rng = 42, delay = 0;
    uint64_t expected[] = {100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS};
    for (uint32_t n = 1; n <= 6; n++) {
        CHECK_OK(bw_backoff_delay(none, n, 0, &rng, &delay));
        CHECK(delay == expected[n - 1]);
    }
    CHECK_OK(bw_backoff_delay(none, 0, 0, &rng, &delay)); /* 0 is read as 1 */
    CHECK(delay == 100 * MS);
    for (int i = 0; i < 200; i++) {
        uint32_t n = 1 + (uint32_t)(i % 8);
        uint64_t base = n <= 4 ? expected[n - 1] : 1000 * MS;
        uint64_t before = rng;
        CHECK_OK(bw_backoff_delay(full, n, 0, &rng, &delay));
        CHECK(delay <= base);
        CHECK(rng != before); /* the generator advanced */
        /* Pure: the same inputs give the same delay. */
        uint64_t again = before, delay2 = 0;
        CHECK_OK(bw_backoff_delay(full, n, 0, &again, &delay2));
        CHECK(delay2 == delay && again == rng);
        CHECK_OK(bw_backoff_delay(equal, n, 0, &rng, &delay));
        CHECK(delay >= base / 2 && delay <= base);
        uint64_t previous = 300 * MS;
        CHECK_OK(bw_backoff_delay(decor, n, previous, &rng, &delay));
        CHECK(delay >= 100 * MS && delay <= 900 * MS);
    }
    bw_retry_config_free(none);
    bw_retry_config_free(full);
    bw_retry_config_free(equal);
    bw_retry_config_free(decor);
}

/* Decorrelated jitter jitters from the first retry: with no previous delay (and with a
 * previous delay below initial) the first retry is uniform in [initial, 3 x initial],
 * through bw_backoff_delay and bw_retry_state alike. */
void test_retry_decorrelated_first_retry(void) {
    bw_retry_config *decor = retry_config(2, BW_JITTER_DECORRELATED); /* 100 ms .. 1 s */
    uint64_t low = UINT64_MAX, high = 0;
    for (uint64_t seed = 0; seed < 1000; seed++) {
        uint64_t rng = seed, delay = 0, delay_40 = 0;
        CHECK_OK(bw_backoff_delay(decor, 1, 0, &rng, &delay));
        CHECK(delay >= 100 * MS && delay <= 300 * MS);
        if (delay < low) low = delay;
        if (delay > high) high = delay;
        /* A previous delay below initial reads as initial: the same draw. */
        uint64_t rng_40 = seed;
        CHECK_OK(bw_backoff_delay(decor, 1, 40 * MS, &rng_40, &delay_40));
        CHECK(delay_40 == delay && rng_40 == rng);
        /* The state machine's first retry is the same draw. */
        bw_retry_state *s = NULL;
        uint64_t state_delay = 0;
        CHECK_OK(bw_retry_state_new(decor, seed, 1, 0, &s));
        CHECK_OK(bw_retry_state_next_delay(s, 1, BW_RETRY_AFTER_NONE, NULL, &state_delay, NULL));
        CHECK(state_delay == delay);
        bw_retry_state_free(s);
    }
    /* 1000 seeds spread over the range (each end tenth missed with p = 0.9^1000). */
    CHECK(low <= 120 * MS && high >= 280 * MS);
    bw_retry_config_free(decor);
}

void test_retry_state_gives_up(void) {
    bw_retry_config *config = retry_config(4, BW_JITTER_NONE);
    bw_retry_state *s = NULL;
    uint64_t delay = 0;
    int32_t reason = 0;
    const uint64_t start = 1000;
    /* Attempts. */
    CHECK_OK(bw_retry_state_new(config, 7, start, 0, &s));
    CHECK(bw_retry_state_attempts(s) == 1);
    CHECK_STATUS(bw_retry_state_next_delay(NULL, start, BW_RETRY_AFTER_NONE, NULL, &delay, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_state_next_delay(s, start, BW_RETRY_AFTER_NONE, NULL, NULL, NULL), BW_NULL_POINTER);
    uint64_t now = start;
    uint64_t expected[] = {100 * MS, 200 * MS, 400 * MS};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(bw_retry_state_next_delay(s, now, BW_RETRY_AFTER_NONE, NULL, &delay, &reason));
        CHECK(delay == expected[i]);
        now += delay;
    }
    CHECK(bw_retry_state_attempts(s) == 4);
    delay = 12345;
    CHECK_STATUS(bw_retry_state_next_delay(s, now, BW_RETRY_AFTER_NONE, NULL, &delay, &reason), BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_ATTEMPTS_EXHAUSTED);
    CHECK(delay == 12345);
    CHECK_STATUS(bw_retry_state_next_delay(s, now, BW_RETRY_AFTER_NONE, NULL, &delay, NULL), BW_RETRY_GIVE_UP);
    bw_retry_state_free(s);
    /* A retry-after hint is a minimum delay. */
    CHECK_OK(bw_retry_state_new(config, 7, start, 0, &s));
    CHECK_OK(bw_retry_state_next_delay(s, start, 350 * MS, NULL, &delay, NULL));
    CHECK(delay == 350 * MS);
    CHECK_OK(bw_retry_state_next_delay(s, start, 1 * MS, NULL, &delay, NULL));
    CHECK(delay == 200 * MS);
    bw_retry_state_free(s);
    /* Deadline: the second retry would start at start + 300 ms >= deadline. */
    CHECK_OK(bw_retry_state_new(config, 7, start, start + 250 * MS, &s));
    CHECK_OK(bw_retry_state_next_delay(s, start, BW_RETRY_AFTER_NONE, NULL, &delay, NULL));
    CHECK_STATUS(bw_retry_state_next_delay(s, start + delay, BW_RETRY_AFTER_NONE, NULL, &delay, &reason), BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_DEADLINE_EXCEEDED);
    bw_retry_state_free(s);
    /* max_elapsed. */
    CHECK_OK(bw_retry_config_set_max_elapsed(config, 250 * MS));
    CHECK_OK(bw_retry_state_new(config, 7, start, 0, &s));
    CHECK_OK(bw_retry_state_next_delay(s, start, BW_RETRY_AFTER_NONE, NULL, &delay, NULL));
    CHECK_STATUS(bw_retry_state_next_delay(s, start + delay, BW_RETRY_AFTER_NONE, NULL, &delay, &reason), BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_ELAPSED_EXCEEDED);
    bw_retry_state_free(s);
    CHECK_OK(bw_retry_config_set_max_elapsed(config, 0));
    /* Budget: no request recorded and no floor: nothing to withdraw. */
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    bw_retry_budget *empty = NULL;
    CHECK_OK(bw_retry_budget_new(0.5, 0, 1000 * MS, clock, &empty));
    CHECK_OK(bw_retry_state_new(config, 7, start, 0, &s));
    CHECK_STATUS(bw_retry_state_next_delay(s, start, BW_RETRY_AFTER_NONE, empty, &delay, &reason), BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_BUDGET_EXHAUSTED);
    CHECK(bw_retry_state_attempts(s) == 1);
    bw_retry_state_free(s);
    bw_retry_budget_free(empty);
    bw_clock_free(clock);
    bw_retry_config_free(config);
}

void test_retry_budget(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    bw_retry_budget *budget = NULL;
    CHECK_STATUS(bw_retry_budget_new(0.5, 0, 1000 * MS, clock, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_budget_new(-1.0, 0, 1000 * MS, clock, &budget), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("budget.ratio");
    CHECK_STATUS(bw_retry_budget_new(0.0, 0, 1000 * MS, clock, &budget), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("budget.min_per_second");
    CHECK_STATUS(bw_retry_budget_new(0.5, 0, 1, clock, &budget), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("budget.window");
    CHECK(budget == NULL);
    CHECK_OK(bw_retry_budget_new(0.5, 0, 10000 * MS, clock, &budget));
    CHECK_STATUS(bw_retry_budget_record_request(NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_budget_try_withdraw(NULL), BW_NULL_POINTER);
    bw_retry_budget_stats stats;
    CHECK_STATUS(bw_retry_budget_get_stats(NULL, &stats), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_budget_get_stats(budget, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_retry_budget_try_withdraw(budget), BW_RETRY_BUDGET_EXHAUSTED);
    for (int i = 0; i < 10; i++) CHECK_OK(bw_retry_budget_record_request(budget));
    CHECK_OK(bw_retry_budget_get_stats(budget, &stats));
    CHECK(stats.requests == 10);
    CHECK(stats.available == 5);
    int granted = 0;
    for (int i = 0; i < 10; i++) granted += bw_retry_budget_try_withdraw(budget) == BW_OK;
    CHECK(granted == 5);
    CHECK_OK(bw_retry_budget_get_stats(budget, &stats));
    CHECK(stats.retries == 5 && stats.available == 0);
    bw_retry_budget *copy = bw_retry_budget_clone(budget);
    CHECK(copy == budget);
    bw_retry_budget_free(copy);
    bw_retry_budget_free(budget);
    CHECK(bw_retry_budget_clone(NULL) == NULL);
    bw_retry_budget_free(NULL);
    bw_clock_free(clock);
}

void test_retry_create_free_loop(void) {
    for (int i = 0; i < 200; i++) {
        bw_retry_config *config = retry_config(3, BW_JITTER_FULL);
        bw_retry_state *s = NULL;
        CHECK_OK(bw_retry_state_new(config, (uint64_t)i, 1, 0, &s));
        bw_retry_budget *budget = NULL;
        CHECK_OK(bw_retry_budget_new(0.2, 10, 10000 * MS, NULL, &budget));
        uint64_t delay;
        CHECK_OK(bw_retry_state_next_delay(s, 1, BW_RETRY_AFTER_NONE, budget, &delay, NULL));
        bw_retry_budget *c = bw_retry_budget_clone(budget);
        bw_retry_budget_free(budget);
        bw_retry_budget_free(c);
        bw_retry_state_free(s);
        bw_retry_config_free(config);
    }
}
