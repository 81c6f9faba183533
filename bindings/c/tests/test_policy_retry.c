/* A policy's retry loop driven from C: the same classes, schedule, budget and counters
 * as the Rust `Policy::call`. */
#include "bw_test.h"

static const char *RETRYING =
    "[policies.pay.retry]\n"
    "max_attempts = 3\n"
    "retry_on = [\"failure\", \"rate_limited\"]\n"
    "backoff = { initial = \"10ms\", multiplier = 2.0, max = \"1s\", jitter = \"none\" }\n"
    "[policies.plain.bulkhead]\n"
    "max_concurrent = 1\n";

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
    CHECK_OK(bw_policy_retry_begin(pay, 7, &retry));
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
    CHECK_OK(bw_policy_retry_begin(pay, 7, &retry));
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
    CHECK_STATUS(bw_policy_retry_begin(plain, 1, &retry), BW_NO_STAGE);
    CHECK(retry == NULL);
    CHECK_STATUS(bw_policy_retry_begin(pay, 1, NULL), BW_NULL_POINTER);
    CHECK_OK(bw_policy_retry_begin(pay, 1, &retry));
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
