/* Engine event listeners (transitions delivered exactly once, reloads, user_data) and
 * the policy run-time controls (chaos on/off, breaker force-open/disable/reset). */
#include "bw_test.h"

struct seen {
    int transitions, reloads, other;
    int to_open, to_half_open, to_closed, to_forced_open;
    uint64_t last_generation;
    size_t last_added, last_removed, last_changed;
    char last_policy[64];
};

static void on_event(const bw_event *event, void *user_data) {
    struct seen *s = user_data;
    switch (event->kind) {
    case BW_EVENT_TRANSITION:
        s->transitions++;
        if (event->to_state == BW_BREAKER_OPEN) s->to_open++;
        if (event->to_state == BW_BREAKER_HALF_OPEN) s->to_half_open++;
        if (event->to_state == BW_BREAKER_CLOSED) s->to_closed++;
        if (event->to_state == BW_BREAKER_FORCED_OPEN) s->to_forced_open++;
        s->last_generation = event->generation;
        if (event->policy_len < sizeof s->last_policy) {
            memcpy(s->last_policy, event->policy, event->policy_len);
            s->last_policy[event->policy_len] = '\0';
        }
        break;
    case BW_EVENT_RELOAD:
        s->reloads++;
        s->last_added = event->added;
        s->last_removed = event->removed;
        s->last_changed = event->changed;
        CHECK(event->policy != NULL && event->policy_len == 0);
        break;
    default:
        s->other++;
    }
}

static void never_called(const bw_event *event, void *user_data) {
    (void)event;
    (void)user_data;
    CHECK(0);
}

static const char *BREAKER_TOML =
    "[policies.pay.circuit_breaker]\n"
    "failure_rate_threshold = 50\n"
    "minimum_calls = 2\n"
    "window = { type = \"count\", size = 2 }\n"
    "open_duration = \"1s\"\n"
    "half_open_permits = 1\n";

void test_events_engine_listener(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(BREAKER_TOML, clock, &engine));
    struct seen s;
    memset(&s, 0, sizeof s);
    CHECK_STATUS(bw_engine_set_listener(NULL, on_event, &s), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_set_listener(engine, NULL, &s), BW_NULL_POINTER);
    CHECK_OK(bw_engine_set_listener(engine, on_event, &s));
    CHECK_STATUS(bw_engine_set_listener(engine, never_called, NULL), BW_ALREADY_SET);
    CHECK_ERROR_MENTIONS("listener");
    bw_policy *p = NULL;
    CHECK_OK(bw_engine_policy(engine, "pay", &p));
    bw_permit permit;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL));
        CHECK_OK(bw_policy_complete(p, &permit, BW_OUTCOME_FAILURE, 1000));
    }
    CHECK(s.transitions == 1 && s.to_open == 1);
    CHECK(strcmp(s.last_policy, "pay") == 0);
    CHECK(s.last_generation == 1);
    /* Rejections while open are not transitions. */
    for (int i = 0; i < 5; i++)
        CHECK_STATUS(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL), BW_CIRCUIT_OPEN);
    CHECK(s.transitions == 1);
    CHECK_OK(bw_clock_advance(clock, 1000000000ULL));
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK(s.to_half_open == 1);
    CHECK_OK(bw_policy_complete(p, &permit, BW_OUTCOME_SUCCESS, 1000));
    CHECK(s.to_closed == 1);
    CHECK(s.transitions == 3 && s.last_generation == 3);
    /* Manual transitions through the policy controls are events too. */
    CHECK_OK(bw_policy_breaker_force_open(p));
    CHECK(s.to_forced_open == 1);
    CHECK_OK(bw_policy_breaker_reset(p));
    CHECK(s.transitions == 5 && s.to_closed == 2);
    /* Reloads. */
    CHECK_OK(bw_engine_reload_toml(engine, "[policies.other.bulkhead]\nmax_concurrent = 1\n"));
    CHECK(s.reloads == 1 && s.last_added == 1 && s.last_removed == 1 && s.last_changed == 0);
    CHECK(s.other == 0);
    bw_policy_free(p);
    bw_engine_free(engine);
    bw_clock_free(clock);
}

void test_events_policy_controls(void) {
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(
        "[policies.c.chaos]\nenabled = false\nrejection_probability = 1.0\n"
        "[policies.b.circuit_breaker]\nminimum_calls = 10\n", NULL, &engine));
    bw_policy *c = NULL, *b = NULL;
    CHECK_OK(bw_engine_policy(engine, "c", &c));
    CHECK_OK(bw_engine_policy(engine, "b", &b));
    bw_permit permit;
    CHECK_OK(bw_policy_acquire(c, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK_OK(bw_policy_complete(c, &permit, BW_OUTCOME_SUCCESS, 0));
    CHECK_OK(bw_policy_chaos_set_enabled(c, true));
    CHECK_STATUS(bw_policy_acquire(c, BW_PRIORITY_DEFAULT, &permit, NULL), BW_INJECTED_REJECTION);
    CHECK_OK(bw_policy_chaos_set_enabled(c, false));
    CHECK_OK(bw_policy_acquire(c, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK_OK(bw_policy_complete(c, &permit, BW_OUTCOME_SUCCESS, 0));
    CHECK_STATUS(bw_policy_chaos_set_enabled(NULL, true), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_chaos_set_enabled(b, true), BW_NO_STAGE);
    CHECK_ERROR_MENTIONS("no chaos");
    CHECK_STATUS(bw_policy_breaker_force_open(c), BW_NO_STAGE);
    CHECK_ERROR_MENTIONS("circuit_breaker");
    CHECK_STATUS(bw_policy_breaker_disable(c), BW_NO_STAGE);
    CHECK_STATUS(bw_policy_breaker_reset(c), BW_NO_STAGE);
    CHECK_STATUS(bw_policy_breaker_force_open(NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_breaker_disable(NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_policy_breaker_reset(NULL), BW_NULL_POINTER);
    bw_policy_stats stats;
    CHECK_OK(bw_policy_breaker_force_open(b));
    CHECK_OK(bw_policy_get_stats(b, &stats));
    CHECK(stats.breaker_state == BW_BREAKER_FORCED_OPEN);
    CHECK_STATUS(bw_policy_acquire(b, BW_PRIORITY_DEFAULT, &permit, NULL), BW_CIRCUIT_OPEN);
    CHECK_OK(bw_policy_breaker_disable(b));
    CHECK_OK(bw_policy_get_stats(b, &stats));
    CHECK(stats.breaker_state == BW_BREAKER_DISABLED);
    CHECK_OK(bw_policy_breaker_reset(b));
    CHECK_OK(bw_policy_get_stats(b, &stats));
    CHECK(stats.breaker_state == BW_BREAKER_CLOSED);
    CHECK(stats.transitions_to_forced_open == 1 && stats.transitions_to_disabled == 1);
    CHECK_OK(bw_policy_acquire(b, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK_OK(bw_policy_complete(b, &permit, BW_OUTCOME_SUCCESS, 0));
    bw_policy_free(c);
    bw_policy_free(b);
    bw_engine_free(engine);
}

void test_events_engine_create_free_loop(void) {
    for (int i = 0; i < 100; i++) {
        bw_engine *engine = NULL;
        CHECK_OK(bw_engine_from_toml(BREAKER_TOML, NULL, &engine));
        struct seen s;
        CHECK_OK(bw_engine_set_listener(engine, on_event, &s));
        bw_engine_free(engine);
    }
}
