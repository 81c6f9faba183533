/* Trace context on events: the traced acquire, completion and retry step hand the
 * caller's bw_trace_context to the events they cause (bw_event.trace); untraced calls'
 * events carry zeros; invalid contexts are refused without side effects. */
#include "bw_test.h"

struct traced_events {
    int transitions, exhausted;
    bw_trace_context last;
};

static void on_traced_event(const bw_event *event, void *user_data) {
    struct traced_events *seen = user_data;
    if (event->kind == BW_EVENT_TRANSITION) seen->transitions++;
    if (event->kind == BW_EVENT_BUDGET_EXHAUSTED) seen->exhausted++;
    seen->last = event->trace;
}

static bw_trace_context context(uint8_t n) {
    bw_trace_context t;
    memset(&t, 0, sizeof t);
    memset(t.trace_id, n, sizeof t.trace_id);
    memset(t.span_id, n + 100, sizeof t.span_id);
    t.flags = 1;
    return t;
}

void test_trace_context_on_events(void) {
    CHECK(sizeof(bw_trace_context) == 32);
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml("[policies.pay.circuit_breaker]\n"
                                 "minimum_calls = 2\nfailure_rate_threshold = 50\n"
                                 "[policies.pay.retry]\nmax_attempts = 5\n"
                                 "budget = { ratio = 0.0, min_per_second = 1, window = \"1s\" }\n",
                                 NULL, &engine));
    struct traced_events seen;
    memset(&seen, 0, sizeof seen);
    CHECK_OK(bw_engine_set_listener(engine, on_traced_event, &seen));
    bw_policy *pay = NULL;
    CHECK_OK(bw_engine_policy(engine, "pay", &pay));

    bw_permit permit;
    bw_trace_context zero;
    memset(&zero, 0, sizeof zero);
    CHECK_STATUS(bw_policy_acquire_traced(pay, BW_PRIORITY_DEFAULT, &zero, &permit, NULL), BW_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("trace id");
    bw_trace_context one = context(1), two = context(2);
    CHECK_OK(bw_policy_acquire_traced(pay, BW_PRIORITY_DEFAULT, &one, &permit, NULL));
    CHECK_OK(bw_policy_complete_traced(pay, &permit, BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN, &one));
    CHECK_OK(bw_policy_acquire_traced(pay, BW_PRIORITY_DEFAULT, NULL, &permit, NULL));
    bw_trace_context reserved = two;
    reserved.reserved[0] = 1;
    CHECK_STATUS(bw_policy_complete_traced(pay, &permit, BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN, &reserved),
                 BW_INVALID_ARGUMENT);
    CHECK(seen.transitions == 0); /* refused: nothing completed */
    CHECK_OK(bw_policy_complete_traced(pay, &permit, BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN, &two));
    CHECK(seen.transitions == 1);
    CHECK(memcmp(&seen.last, &two, sizeof two) == 0); /* the completion that tripped it */

    bw_retry_state *retry = NULL;
    CHECK_OK(bw_policy_retry_begin(pay, 7, 0, &retry));
    uint64_t delay = 0;
    int32_t reason = 0;
    CHECK_OK(bw_policy_retry_next_traced(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, NULL, &delay,
                                         &reason));
    bw_trace_context three = context(3);
    CHECK_STATUS(bw_policy_retry_next_traced(pay, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE, &three,
                                             &delay, &reason),
                 BW_RETRY_GIVE_UP);
    CHECK(reason == BW_GIVE_UP_BUDGET_EXHAUSTED);
    CHECK(seen.exhausted == 1);
    CHECK(memcmp(&seen.last, &three, sizeof three) == 0);
    bw_retry_state_free(retry);

    /* Untraced: forcing the breaker open emits a transition with zeros. */
    CHECK_OK(bw_policy_breaker_force_open(pay));
    CHECK(memcmp(&seen.last, &zero, sizeof zero) == 0);
    bw_policy_free(pay);
    bw_engine_free(engine);
}

/* The keyed forms: a keyed completion's context reaches the trip it causes; an invalid
 * context is refused and leaves the keyed permit live. */
void test_trace_context_on_keyed_calls(void) {
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml("[policies.api.circuit_breaker]\n"
                                 "minimum_calls = 2\nfailure_rate_threshold = 50\n"
                                 "[policies.api.per_key]\nrate = 100\n",
                                 NULL, &engine));
    struct traced_events seen;
    memset(&seen, 0, sizeof seen);
    CHECK_OK(bw_engine_set_listener(engine, on_traced_event, &seen));
    bw_policy *api = NULL;
    CHECK_OK(bw_engine_policy(engine, "api", &api));

    static const uint8_t key[] = "tenant-1";
    bw_keyed_permit permit;
    bw_trace_context zero;
    memset(&zero, 0, sizeof zero);
    CHECK_STATUS(bw_policy_acquire_keyed_traced(api, key, sizeof key - 1, BW_PRIORITY_DEFAULT, &zero, &permit, NULL),
                 BW_INVALID_ARGUMENT);
    for (uint8_t n = 1; n <= 2; n++) {
        bw_trace_context acquired = context(n), completed = context(n + 10);
        CHECK_OK(bw_policy_acquire_keyed_traced(api, key, sizeof key - 1, BW_PRIORITY_DEFAULT, &acquired, &permit,
                                                NULL));
        CHECK_STATUS(bw_policy_complete_keyed_traced(api, &permit, BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN, &zero),
                     BW_INVALID_ARGUMENT);
        CHECK_OK(bw_policy_complete_keyed_traced(api, &permit, BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN, &completed));
    }
    bw_trace_context tripped = context(12);
    CHECK(seen.transitions == 1);
    CHECK(memcmp(&seen.last, &tripped, sizeof tripped) == 0);
    bw_policy_free(api);
    bw_engine_free(engine);
}
