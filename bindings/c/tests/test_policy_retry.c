/* A policy's retry loop driven from C: the same classes, schedule, budget, deadline,
 * counters and events as the Rust `Policy::call`. */
#include "bw_test.h"

static const char *RETRYING =
    "[policies.pay.retry]\n"
    "max_attempts = 3\n"
    "retry_on = [\"failure\", \"rate_limited\"]\n"
    "backoff = { initial = \"10ms\", multiplier = 2.0, max = \"1s\", jitter = \"none\" }\n"
    "[policies.plain.bulkhead]\n"
    "max_concurrent = 1\n";

static const char *RETRYING_LONG =
    "[policies.pay.retry]\n"
    "max_attempts = 10\n"
    "backoff = { initial = \"10ms\", multiplier = 2.0, max = \"1s\", jitter = \"none\" }\n";

static const char *BUDGETED =
    "[policies.pay.retry]\n"
    "max_attempts = 10\n"
    "backoff = { initial = \"10ms\", multiplier = 2.0, max = \"1s\", jitter = \"none\" }\n"
    "budget = { ratio = 0.0, min_per_second = 1, window = \"1s\" }\n";

void test_policy_retry_loop(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(RETRYING, clock, &engine));
    bw_policy *pay = NULL;
    CHECK_OK(bw_engine_policy(engine, "pay", &pay));

    uint32_t mask = 0;
    CHECK_OK(bw_policy_retry_on(pay, &mask));
    CHECK(mask == (BW_RETRY_ON_FAILURE | BW_RETRY_ON_RATE_LIMITED));

    bw_retry_state *retry = NULL;
    CHECK_OK(bw_policy_retry_begin(pay, 7, 0, &retry));
    uint64_t delay = 0;
    int32_t reason = 0;
    /* Two retries after failures: 10 ms then 20 ms (no jitter). */
    CHECK_OK(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason));
    CHECK(delay == 10000000ULL);
    CHECK_OK(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason));
    CHECK(delay == 20000000ULL);
    /* The third attempt was the last. */
    CHECK_STATUS(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason),
                 BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_ATTEMPTS_EXHAUSTED);
    CHECK(bw_retry_state_attempts(retry) == 3);
    bw_retry_state_free(retry);

    /* A rejection's retry_after is the minimum delay; unlisted classes are not retried. */
    CHECK_OK(bw_policy_retry_begin(pay, 7, 0, &retry));
    CHECK_OK(bw_policy_retry_next(pay, retry, BW_RETRY_ON_RATE_LIMITED, 500000000ULL, &delay, &reason));
    CHECK(delay == 500000000ULL);
    CHECK_STATUS(bw_policy_retry_next(pay, retry, BW_RETRY_ON_TIMEOUT, BW_RETRY_AFTER_NONE, &delay, &reason),
                 BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_NOT_RETRYABLE);
    bw_retry_state_free(retry);

    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(pay, &stats));
    CHECK(stats.retries == 3);

    bw_policy_free(pay);
    bw_engine_free(engine);
    bw_clock_free(clock);
}

void test_policy_retry_errors(void) {
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(RETRYING, NULL, &engine));
    bw_policy *pay = NULL, *plain = NULL;
    CHECK_OK(bw_engine_policy(engine, "pay", &pay));
    CHECK_OK(bw_engine_policy(engine, "plain", &plain));
    uint32_t mask = 12345;
    CHECK_STATUS(bw_policy_retry_on(plain, &mask), BW_NO_STAGE);
    CHECK(mask == 12345);
    CHECK_ERROR_MENTIONS("no retry section");
    CHECK_STATUS(bw_policy_retry_on(NULL, &mask), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_retry_on(pay, NULL), BW_NULL_POINTER);
    bw_retry_state *retry = NULL;
    CHECK_STATUS(bw_policy_retry_begin(plain, 1, 0, &retry), BW_NO_STAGE);
    CHECK(retry == NULL);
    CHECK_STATUS(bw_policy_retry_begin(pay, 1, 0, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_retry_begin(NULL, 1, 0, &retry), BW_NULL_POINTER);
    CHECK_OK(bw_policy_retry_begin(pay, 1, 0, &retry));
    uint64_t delay = 0;
    CHECK_STATUS(bw_policy_retry_next(pay, retry, 0, BW_RETRY_AFTER_NONE, &delay, NULL), BW_INVALID_ARGUMENT);
    CHECK_STATUS(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE | BW_RETRY_ON_TIMEOUT,
                                      BW_RETRY_AFTER_NONE, &delay, NULL),
                 BW_INVALID_ARGUMENT);
    CHECK_STATUS(bw_policy_retry_next(pay, retry, 1u << 20, BW_RETRY_AFTER_NONE, &delay, NULL), BW_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("BW_RETRY_ON_");
    CHECK_STATUS(bw_policy_retry_next(NULL, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, NULL),
                 BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_retry_next(pay, NULL, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, NULL),
                 BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, NULL, NULL),
                 BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_retry_next(plain, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, NULL),
                 BW_NO_STAGE);
    bw_retry_state_free(retry);
    bw_policy_free(plain);
    bw_policy_free(pay);
    bw_engine_free(engine);
}

/* An overall deadline on the policy's clock: a retry whose delay would end at or after
 * it is not started (DEADLINE_EXCEEDED at once, as in the Rust call). */
void test_policy_retry_deadline(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(RETRYING_LONG, clock, &engine));
    bw_policy *pay = NULL;
    CHECK_OK(bw_engine_policy(engine, "pay", &pay));
    CHECK(bw_policy_now(NULL) == 0);
    uint64_t now = bw_policy_now(pay);
    CHECK(now == bw_clock_now(clock));
    /* Delays 10, 20, 40 ms: the third retry would end at 70 ms, past a 50 ms deadline. */
    bw_retry_state *retry = NULL;
    CHECK_OK(bw_policy_retry_begin(pay, 7, now + 50 * 1000000ULL, &retry));
    uint64_t delay = 0, slept = 0;
    int32_t reason = 0;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason));
        CHECK_OK(bw_clock_advance(clock, delay));
        slept += delay;
    }
    CHECK(slept == 30 * 1000000ULL);
    delay = 12345;
    CHECK_STATUS(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason),
                 BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_DEADLINE_EXCEEDED);
    CHECK(delay == 12345); /* untouched */
    CHECK(bw_retry_state_attempts(retry) == 3);
    bw_retry_state_free(retry);
    /* A deadline exactly at the end of the first delay is too close; 1 ns later fits. */
    now = bw_policy_now(pay);
    CHECK_OK(bw_policy_retry_begin(pay, 7, now + 10 * 1000000ULL, &retry));
    CHECK_STATUS(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason),
                 BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_DEADLINE_EXCEEDED);
    bw_retry_state_free(retry);
    CHECK_OK(bw_policy_retry_begin(pay, 7, now + 10 * 1000000ULL + 1, &retry));
    CHECK_OK(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason));
    CHECK(delay == 10 * 1000000ULL);
    bw_retry_state_free(retry);
    bw_policy_free(pay);
    bw_engine_free(engine);
    bw_clock_free(clock);
}

struct budget_events {
    int exhausted;
};

static void on_budget_event(const bw_event *event, void *user_data) {
    struct budget_events *seen = user_data;
    if (event->kind == BW_EVENT_BUDGET_EXHAUSTED) seen->exhausted++;
}

/* One rule: each retry the budget refuses is counted once in
 * rejected_retry_budget_exhausted and emits BW_EVENT_BUDGET_EXHAUSTED once; asking the
 * state again does neither. */
void test_policy_retry_budget_refusal(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(BUDGETED, clock, &engine));
    struct budget_events seen = {0};
    CHECK_OK(bw_engine_set_listener(engine, on_budget_event, &seen));
    bw_policy *pay = NULL;
    CHECK_OK(bw_engine_policy(engine, "pay", &pay));
    bw_retry_state *retry = NULL;
    CHECK_OK(bw_policy_retry_begin(pay, 7, 0, &retry));
    uint64_t delay = 0;
    int32_t reason = 0;
    /* min_per_second = 1, ratio 0: one retry, then refusals. */
    CHECK_OK(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason));
    for (int i = 0; i < 3; i++) {
        CHECK_STATUS(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason),
                     BW_RETRY_GIVE_UP);
        CHECK(reason == BW_GIVE_UP_BUDGET_EXHAUSTED);
    }
    bw_retry_state_free(retry);
    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(pay, &stats));
    CHECK(stats.retries == 1);
    CHECK(stats.rejected_retry_budget_exhausted == 1);
    CHECK(seen.exhausted == 1);
    /* A second call refused at once: one more of each. */
    CHECK_OK(bw_policy_retry_begin(pay, 8, 0, &retry));
    CHECK_STATUS(bw_policy_retry_next(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &delay, &reason),
                 BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_BUDGET_EXHAUSTED);
    bw_retry_state_free(retry);
    CHECK_OK(bw_policy_get_stats(pay, &stats));
    CHECK(stats.rejected_retry_budget_exhausted == 2);
    CHECK(seen.exhausted == 2);
    /* The same counter in the Prometheus text. */
    char *text = NULL;
    CHECK_OK(bw_engine_prometheus(engine, &text));
    CHECK(text != NULL);
    CHECK(strstr(text, "breakwater_rejections_total{policy=\"pay\",reason=\"retry_budget_exhausted\"} 2") != NULL);
    CHECK(strstr(text, "budget_refusals") == NULL);
    bw_string_free(text);
    bw_policy_free(pay);
    bw_engine_free(engine);
    bw_clock_free(clock);
}
