/* Per-key limits through the C ABI: each key has its own quota and concurrency, the
 * keyed permit gives its key's slot back on completion, and the plain completion refuses
 * a keyed permit's inner permit so a slot cannot be lost. */
#include "bw_test.h"

void test_keyed_limits_per_key(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1000, &clock));
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml("[policies.api.per_key]\n"
                                 "rate = 1\nperiod = \"1s\"\nburst = 1\n"
                                 "max_concurrent = 1\nmax_keys = 16\n",
                                 clock, &engine));
    bw_policy *api = NULL;
    CHECK_OK(bw_engine_policy(engine, "api", &api));

    const uint8_t alice[] = "alice", bob[] = "bob";
    bw_keyed_permit a, b, again;
    uint64_t retry_after = 0;
    CHECK_OK(bw_policy_acquire_keyed(api, alice, 5, BW_PRIORITY_DEFAULT, &a, &retry_after));
    /* Alice's one slot is taken; Bob has his own. */
    CHECK_STATUS(bw_policy_acquire_keyed(api, alice, 5, BW_PRIORITY_DEFAULT, &again, &retry_after),
                 BW_BULKHEAD_FULL);
    CHECK_OK(bw_policy_acquire_keyed(api, bob, 3, BW_PRIORITY_DEFAULT, &b, NULL));

    /* The plain completion refuses a keyed permit's inner permit, which stays live. */
    CHECK_STATUS(bw_policy_complete(api, &a.permit, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN),
                 BW_INVALID_ARGUMENT);
    CHECK_OK(bw_policy_complete_keyed(api, &a, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_STATUS(bw_policy_complete_keyed(api, &a, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN),
                 BW_PERMIT_ALREADY_USED);
    CHECK_OK(bw_policy_complete_keyed(api, &b, BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN));

    /* Alice's slot is back, but her quota (1/s, burst 1) is spent until a second passes. */
    CHECK_STATUS(bw_policy_acquire_keyed(api, alice, 5, BW_PRIORITY_DEFAULT, &again, &retry_after),
                 BW_RATE_LIMITED);
    CHECK(retry_after == 1000000000ULL);
    CHECK_OK(bw_clock_advance(clock, 1000000000ULL));
    CHECK_OK(bw_policy_acquire_keyed(api, alice, 5, BW_PRIORITY_DEFAULT, &again, NULL));
    CHECK_OK(bw_policy_complete_keyed(api, &again, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));

    CHECK_STATUS(bw_policy_acquire_keyed(NULL, alice, 5, BW_PRIORITY_DEFAULT, &again, NULL),
                 BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_acquire_keyed(api, NULL, 5, BW_PRIORITY_DEFAULT, &again, NULL),
                 BW_NULL_POINTER);

    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(api, &stats));
    CHECK(stats.permitted == 3);
    CHECK(stats.success == 2 && stats.failure == 1);
    bw_policy_free(api);
    bw_engine_free(engine);
    bw_clock_free(clock);
}
