/* The conformance suite's C runner: every scenario of tests/conformance/scenarios/
 * through include/breakwater.h and the library (format: tests/conformance/README.md).
 * The Rust, Go and Python runners read the same files and must pass the same number.
 *
 *   conformance DIR    runs every DIR/ *.json in byte order of the names and prints
 *                      "conformance: N scenarios passed" (", M failed" and exit 1 else)
 *
 * A step is checked, and any difference (or a step this runner cannot express) fails
 * its scenario with "FAIL name: step n (op): what". Failures longjmp out of the step
 * back to run_scenario, which releases everything the run holds. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakwater.h"
#include "json.h"

#define MAX_INT ((int64_t)(((uint64_t)1 << 53) - 1))

/* ---- the state of one run ---------------------------------------------------------- */

typedef struct {
    char *name;
    bw_policy *policy;
} handle_slot;

typedef struct {
    char *name;
    bw_limiter *limiter;
} limiter_slot;

typedef struct {
    char *id;
    bw_policy *policy; /* its own reference: the issuing handle */
    bw_permit permit;
    bool done;
} permit_slot;

typedef struct {
    char *id;
    bw_limiter *limiter; /* borrowed from the limiter table */
    bw_reservation reservation;
    bool cancelled;
} reservation_slot;

typedef struct {
    char *id;
    bw_policy *policy; /* its own reference */
    bw_retry_state *state;
} retry_slot;

typedef struct {
    int32_t kind, from, to, reason;
    char *policy;
    uint64_t generation, at_ns, added, removed, changed;
} event_record;

/* A growable array of `T`. */
#define VEC(T) struct { T *items; size_t len, cap; }

typedef struct {
    jmp_buf fail;
    char message[2048];
    size_t step;
    const char *op;
    bw_clock *clock;
    bw_engine *engine;
    VEC(handle_slot) handles;
    VEC(limiter_slot) limiters;
    VEC(permit_slot) permits;
    VEC(reservation_slot) reservations;
    VEC(retry_slot) retries;
    VEC(event_record) events;
    bool events_lost;
} run;

static void grow(void **items, size_t *cap, size_t len, size_t size) {
    if (len < *cap) return;
    size_t cap2 = *cap ? *cap * 2 : 8;
    void *grown = realloc(*items, cap2 * size);
    if (!grown) {
        fprintf(stderr, "conformance: out of memory\n");
        exit(2);
    }
    *items = grown;
    *cap = cap2;
}

#define PUSH(vec, value)                                                                \
    do {                                                                                \
        grow((void **)&(vec).items, &(vec).cap, (vec).len, sizeof *(vec).items);        \
        (vec).items[(vec).len++] = (value);                                             \
    } while (0)

static char *copy(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) {
        fprintf(stderr, "conformance: out of memory\n");
        exit(2);
    }
    memcpy(d, s, n);
    return d;
}

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
static void fail(run *r, const char *fmt, ...) {
    char text[1536];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    if (r->step == 0)
        snprintf(r->message, sizeof r->message, "step 0 (setup): %s", text);
    else
        snprintf(r->message, sizeof r->message, "step %zu (%s): %s (clock %" PRIu64 " ns)", r->step,
                 r->op, text, r->clock ? bw_clock_now(r->clock) : 0);
    longjmp(r->fail, 1);
}

static const char *last_error(void) {
    static char buf[1024];
    bw_last_error_message(buf, sizeof buf);
    return buf;
}

/* ---- reading objects strictly -------------------------------------------------------- */

typedef struct {
    run *r;
    const char *what;
    const json *obj;
    unsigned char used[64];
} fields;

static void fields_open(fields *f, run *r, const char *what, const json *obj) {
    f->r = r;
    f->what = what;
    f->obj = obj;
    memset(f->used, 0, sizeof f->used);
    if (obj->type != JSON_OBJECT) fail(r, "%s: expected an object, found %s", what, json_kind(obj));
    if (obj->count > sizeof f->used) fail(r, "%s: too many keys", what);
}

static const json *opt(fields *f, const char *key) {
    for (size_t i = 0; i < f->obj->count; i++) {
        if (strcmp(f->obj->keys[i], key) == 0) {
            f->used[i] = 1;
            return &f->obj->items[i];
        }
    }
    return NULL;
}

static const json *req(fields *f, const char *key) {
    const json *v = opt(f, key);
    if (!v) fail(f->r, "%s: missing key `%s`", f->what, key);
    return v;
}

static const char *str_of(fields *f, const char *key, const json *v) {
    if (v->type != JSON_STR) fail(f->r, "%s: `%s` must be a string, found %s", f->what, key, json_kind(v));
    return v->string;
}

static const char *str(fields *f, const char *key) { return str_of(f, key, req(f, key)); }

static const char *opt_str(fields *f, const char *key) {
    const json *v = opt(f, key);
    return v ? str_of(f, key, v) : NULL;
}

static bool boolean_of(fields *f, const char *key, const json *v) {
    if (v->type != JSON_BOOL) fail(f->r, "%s: `%s` must be a boolean, found %s", f->what, key, json_kind(v));
    return v->boolean != 0;
}

static int64_t int_of(fields *f, const char *key, const json *v) {
    if (v->type != JSON_INT) fail(f->r, "%s: `%s` must be an integer, found %s", f->what, key, json_kind(v));
    if (v->integer > MAX_INT || v->integer < -MAX_INT)
        fail(f->r, "%s: `%s` %" PRId64 " is outside +-(2^53 - 1)", f->what, key, v->integer);
    return v->integer;
}

static uint64_t uint_of(fields *f, const char *key, const json *v) {
    int64_t i = int_of(f, key, v);
    if (i < 0) fail(f->r, "%s: `%s` must not be negative, found %" PRId64, f->what, key, i);
    return (uint64_t)i;
}

static uint64_t uint_req(fields *f, const char *key) { return uint_of(f, key, req(f, key)); }

/* Whether `key` is there; its value in `*out`. */
static bool opt_uint(fields *f, const char *key, uint64_t *out) {
    const json *v = opt(f, key);
    if (v) *out = uint_of(f, key, v);
    return v != NULL;
}

static void finish(fields *f) {
    for (size_t i = 0; i < f->obj->count; i++)
        if (!f->used[i]) fail(f->r, "%s: unknown key `%s`", f->what, f->obj->keys[i]);
}

/* ---- names ---------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int32_t code;
} named;

static const named REASONS[] = {
    {"circuit_open", BW_CIRCUIT_OPEN},   {"rate_limited", BW_RATE_LIMITED},
    {"bulkhead_full", BW_BULKHEAD_FULL}, {"load_shed", BW_LOAD_SHED},
    {"retry_budget_exhausted", BW_RETRY_BUDGET_EXHAUSTED}, {"injected", BW_INJECTED_REJECTION},
};
static const named RETRY_CLASSES[] = {
    {"failure", BW_RETRY_ON_FAILURE},
    {"timeout", BW_RETRY_ON_TIMEOUT},
    {"circuit_open", BW_RETRY_ON_CIRCUIT_OPEN},
    {"rate_limited", BW_RETRY_ON_RATE_LIMITED},
    {"bulkhead_full", BW_RETRY_ON_BULKHEAD_FULL},
    {"load_shed", BW_RETRY_ON_LOAD_SHED},
    {"retry_budget_exhausted", BW_RETRY_ON_RETRY_BUDGET_EXHAUSTED},
    {"injected", BW_RETRY_ON_INJECTED},
};
static const named OUTCOMES[] = {
    {"success", BW_OUTCOME_SUCCESS}, {"failure", BW_OUTCOME_FAILURE},
    {"timeout", BW_OUTCOME_TIMEOUT}, {"ignored", BW_OUTCOME_IGNORED},
};
static const named PRIORITIES[] = {
    {"critical", BW_PRIORITY_CRITICAL}, {"default", BW_PRIORITY_DEFAULT}, {"sheddable", BW_PRIORITY_SHEDDABLE},
};
static const named STATES[] = {
    {"closed", BW_BREAKER_CLOSED}, {"open", BW_BREAKER_OPEN}, {"half_open", BW_BREAKER_HALF_OPEN},
    {"forced_open", BW_BREAKER_FORCED_OPEN}, {"disabled", BW_BREAKER_DISABLED},
};
static const named GIVE_UPS[] = {
    {"attempts_exhausted", BW_GIVE_UP_ATTEMPTS_EXHAUSTED}, {"elapsed_exceeded", BW_GIVE_UP_ELAPSED_EXCEEDED},
    {"deadline_exceeded", BW_GIVE_UP_DEADLINE_EXCEEDED},   {"budget_exhausted", BW_GIVE_UP_BUDGET_EXHAUSTED},
    {"not_retryable", BW_GIVE_UP_NOT_RETRYABLE},
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int32_t code_of(run *r, const named *table, size_t n, const char *what, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0) return table[i].code;
    fail(r, "unknown %s `%s`", what, name);
}

static const char *name_of(const named *table, size_t n, int32_t code) {
    for (size_t i = 0; i < n; i++)
        if (table[i].code == code) return table[i].name;
    return "(unknown)";
}

/* ---- lookups -------------------------------------------------------------------------- */

static bw_policy *policy(run *r, const char *name) {
    for (size_t i = 0; i < r->handles.len; i++)
        if (strcmp(r->handles.items[i].name, name) == 0) return r->handles.items[i].policy;
    bw_policy *p = NULL;
    if (bw_engine_policy(r->engine, name, &p) != BW_OK) fail(r, "no policy `%s` in the engine", name);
    handle_slot slot = {copy(name), p};
    PUSH(r->handles, slot);
    return p;
}

static bw_limiter *limiter(run *r, const char *name) {
    for (size_t i = 0; i < r->limiters.len; i++)
        if (strcmp(r->limiters.items[i].name, name) == 0) return r->limiters.items[i].limiter;
    fail(r, "no limiter `%s` in `limiters`", name);
}

static bool id_taken(run *r, const char *id) {
    for (size_t i = 0; i < r->permits.len; i++)
        if (strcmp(r->permits.items[i].id, id) == 0) return true;
    for (size_t i = 0; i < r->reservations.len; i++)
        if (strcmp(r->reservations.items[i].id, id) == 0) return true;
    for (size_t i = 0; i < r->retries.len; i++)
        if (strcmp(r->retries.items[i].id, id) == 0) return true;
    return false;
}

static void new_id(run *r, const char *id) {
    if (id_taken(r, id)) fail(r, "id `%s` used twice", id);
}

static void on_event(const bw_event *event, void *user_data) {
    run *r = user_data;
    event_record e = {event->kind, event->from_state, event->to_state, event->reason, NULL,
                      event->generation, event->at_ns, event->added, event->removed, event->changed};
    e.policy = malloc(event->policy_len + 1);
    if (!e.policy) {
        r->events_lost = true;
        return;
    }
    memcpy(e.policy, event->policy, event->policy_len);
    e.policy[event->policy_len] = '\0';
    PUSH(r->events, e);
}

static void stats(run *r, bw_policy *p, bw_policy_stats *s) {
    if (bw_policy_get_stats(p, s) != BW_OK) fail(r, "bw_policy_get_stats: %s", last_error());
}

/* The `bw_policy_stats` field named `name`; false for an unknown name. */
static bool counter(const bw_policy_stats *s, const char *name, int64_t *out) {
#define FIELD(f)                                                                        \
    if (strcmp(name, #f) == 0) {                                                        \
        *out = (int64_t)s->f;                                                           \
        return true;                                                                    \
    }
    FIELD(permitted) FIELD(success) FIELD(failure) FIELD(timeout) FIELD(ignored) FIELD(slow)
    FIELD(retries) FIELD(rejected_circuit_open) FIELD(rejected_rate_limited)
    FIELD(rejected_bulkhead_full) FIELD(rejected_load_shed) FIELD(rejected_retry_budget_exhausted)
    FIELD(rejected_injected) FIELD(transitions_to_closed) FIELD(transitions_to_open)
    FIELD(transitions_to_half_open) FIELD(transitions_to_forced_open) FIELD(transitions_to_disabled)
    FIELD(latency_count) FIELD(latency_sum_ns) FIELD(breaker_generation) FIELD(limiter_available)
    FIELD(bulkhead_in_flight) FIELD(bulkhead_max_concurrent) FIELD(adaptive_limit)
    FIELD(adaptive_in_flight)
#undef FIELD
    return false;
}

/* ---- steps ------------------------------------------------------------------------------ */

static const char *reason_name(run *r, bw_status status) {
    for (size_t i = 0; i < COUNT(REASONS); i++)
        if (REASONS[i].code == (int32_t)status) return REASONS[i].name;
    fail(r, "status %d (%s): %s", (int)status, bw_status_str((int32_t)status), last_error());
}

static void step_acquire(run *r, fields *f) {
    const char *name = str(f, "policy");
    const char *id = opt_str(f, "id");
    const char *prio_name = opt_str(f, "priority");
    int32_t priority = prio_name ? code_of(r, PRIORITIES, COUNT(PRIORITIES), "priority", prio_name)
                                 : BW_PRIORITY_DEFAULT;
    const char *expect = str(f, "expect");
    bool permitted = strcmp(expect, "permitted") == 0;
    if (!permitted) code_of(r, REASONS, COUNT(REASONS), "rejection reason", expect);
    uint64_t retry_after = 0, latency = 0;
    bool has_retry_after = opt_uint(f, "retry_after_ns", &retry_after);
    const json *failure_json = opt(f, "injected_failure");
    bool injected_failure = failure_json ? boolean_of(f, "injected_failure", failure_json) : false;
    bool has_latency = opt_uint(f, "injected_latency_ns", &latency);
    finish(f);
    if (permitted && (!id || has_retry_after))
        fail(r, "a permitted acquire needs an `id` and no `retry_after_ns`");
    if (!permitted && (id || failure_json || has_latency || !has_retry_after))
        fail(r, "a rejection needs `retry_after_ns` and has no `id` or `injected_*`");
    if (id) new_id(r, id);

    bw_policy *p = policy(r, name);
    bw_permit permit;
    memset(&permit, 0, sizeof permit);
    uint64_t got_retry_after = 0;
    bw_status status = bw_policy_acquire(p, priority, &permit, &got_retry_after);
    if (status == BW_OK) {
        if (!permitted) {
            bw_policy_complete(p, &permit, BW_OUTCOME_IGNORED, BW_DURATION_UNKNOWN);
            fail(r, "permitted; expected %s", expect);
        }
        permit_slot slot = {copy(id), bw_policy_clone(p), permit, false};
        PUSH(r->permits, slot);
        bool got_failure = (permit.flags & BW_PERMIT_INJECTED_FAILURE) != 0;
        bool got_latency_flag = (permit.flags & BW_PERMIT_INJECTED_LATENCY) != 0;
        if (got_failure != injected_failure || permit.injected_latency_ns != latency ||
            got_latency_flag != (permit.injected_latency_ns != 0))
            fail(r, "injected failure %d, latency %" PRIu64 " ns (flag %d); expected %d, %" PRIu64 " ns",
                 got_failure, permit.injected_latency_ns, got_latency_flag, injected_failure, latency);
        return;
    }
    const char *got = reason_name(r, status);
    if (permitted || strcmp(got, expect) != 0)
        fail(r, "rejected %s (retry_after %" PRIu64 " ns); expected %s", got, got_retry_after, expect);
    if (got_retry_after != retry_after)
        fail(r, "retry_after %" PRIu64 " ns; expected %" PRIu64 " ns", got_retry_after, retry_after);
}

static void step_complete(run *r, fields *f) {
    const char *id = str(f, "id");
    int32_t outcome = code_of(r, OUTCOMES, COUNT(OUTCOMES), "outcome", str(f, "outcome"));
    finish(f);
    for (size_t i = 0; i < r->permits.len; i++) {
        permit_slot *s = &r->permits.items[i];
        if (strcmp(s->id, id) != 0) continue;
        if (s->done) fail(r, "permit `%s` was completed before", id);
        bw_status status = bw_policy_complete(s->policy, &s->permit, outcome, BW_DURATION_UNKNOWN);
        if (status != BW_OK) fail(r, "bw_policy_complete: %s: %s", bw_status_str(status), last_error());
        s->done = true;
        return;
    }
    fail(r, "no permit `%s`", id);
}

/* The name of a standalone limiter's answer. */
static const char *limiter_answer(run *r, bw_status status, const char *granted) {
    switch (status) {
    case BW_OK: return granted;
    case BW_RATE_LIMITED: return "rate_limited";
    case BW_NEVER_PASSES: return "never_passes";
    default: fail(r, "status %d (%s): %s", (int)status, bw_status_str(status), last_error());
    }
}

static void step_limiter(run *r, fields *f, bool reserve) {
    bw_limiter *l = limiter(r, str(f, "limiter"));
    const char *id = reserve ? opt_str(f, "id") : NULL;
    uint64_t permits = uint_req(f, "permits");
    uint64_t max_wait = reserve ? uint_req(f, "max_wait_ns") : 0;
    const char *granted = reserve ? "reserved" : "permitted";
    const char *expect = str(f, "expect");
    if (strcmp(expect, granted) != 0 && strcmp(expect, "rate_limited") != 0 &&
        strcmp(expect, "never_passes") != 0)
        fail(r, "unknown answer `%s`", expect);
    uint64_t wait = 0, retry_after = 0;
    bool has_wait = reserve && opt_uint(f, "wait_ns", &wait);
    bool has_retry_after = opt_uint(f, "retry_after_ns", &retry_after);
    finish(f);
    bool fits = strcmp(expect, granted) == 0 ? !has_retry_after && (!reserve || (id && has_wait))
                : strcmp(expect, "rate_limited") == 0 ? has_retry_after && !id && !has_wait
                                                       : !has_retry_after && !id && !has_wait;
    if (!fits) fail(r, "keys do not fit `expect` (see the README)");
    if (id) new_id(r, id);

    uint64_t got_retry_after = 0;
    bw_reservation reservation;
    memset(&reservation, 0, sizeof reservation);
    bw_status status = reserve ? bw_limiter_reserve(l, permits, max_wait, &reservation, &got_retry_after)
                               : bw_limiter_try_acquire(l, permits, &got_retry_after);
    const char *got = limiter_answer(r, status, granted);
    if (status == BW_OK && reserve) {
        reservation_slot slot = {copy(id ? id : ""), l, reservation, false};
        if (id) PUSH(r->reservations, slot);
        else free(slot.id);
    }
    if (strcmp(got, expect) != 0)
        fail(r, "%s (retry_after %" PRIu64 " ns); expected %s", got, got_retry_after, expect);
    if (status == BW_RATE_LIMITED && got_retry_after != retry_after)
        fail(r, "retry_after %" PRIu64 " ns; expected %" PRIu64 " ns", got_retry_after, retry_after);
    if (status == BW_OK && reserve && reservation.wait_ns != wait)
        fail(r, "wait %" PRIu64 " ns; expected %" PRIu64 " ns", reservation.wait_ns, wait);
}

static void step_cancel(run *r, fields *f) {
    const char *id = str(f, "id");
    bool cancelled = boolean_of(f, "cancelled", req(f, "cancelled"));
    finish(f);
    for (size_t i = 0; i < r->reservations.len; i++) {
        reservation_slot *s = &r->reservations.items[i];
        if (strcmp(s->id, id) != 0) continue;
        if (s->cancelled) fail(r, "reservation `%s` was cancelled before", id);
        bool got = false;
        bw_status status = bw_limiter_cancel(s->limiter, &s->reservation, &got);
        if (status != BW_OK) fail(r, "bw_limiter_cancel: %s: %s", bw_status_str(status), last_error());
        s->cancelled = true;
        if (got != cancelled) fail(r, "cancelled %d; expected %d", got, cancelled);
        return;
    }
    fail(r, "no reservation `%s`", id);
}

static void step_expect_limiter(run *r, fields *f) {
    bw_limiter *l = limiter(r, str(f, "limiter"));
    uint64_t available = 0, permitted = 0, rejected = 0;
    bool has_available = opt_uint(f, "available", &available);
    bool has_permitted = opt_uint(f, "permitted", &permitted);
    bool has_rejected = opt_uint(f, "rejected", &rejected);
    finish(f);
    if (!has_available && !has_permitted && !has_rejected) fail(r, "names nothing to check");
    bw_metrics m;
    if (bw_limiter_get_metrics(l, &m) != BW_OK) fail(r, "bw_limiter_get_metrics: %s", last_error());
    uint64_t got_available = bw_limiter_available(l);
    if ((has_available && got_available != available) || (has_permitted && m.permitted != permitted) ||
        (has_rejected && m.rejected != rejected))
        fail(r, "available %" PRIu64 ", permitted %" PRIu64 ", rejected %" PRIu64 "; expected %" PRIu64
                ", %" PRIu64 ", %" PRIu64 " (where given)",
             got_available, m.permitted, m.rejected, available, permitted, rejected);
}

static void step_switch(run *r, fields *f, const char *op) {
    bw_policy *p = policy(r, str(f, "policy"));
    const char *expect = opt_str(f, "expect");
    finish(f);
    bw_status want;
    if (!expect || strcmp(expect, "ok") == 0) want = BW_OK;
    else if (strcmp(expect, "no_stage") == 0) want = BW_NO_STAGE;
    else fail(r, "unknown answer `%s`", expect);
    bw_status got = strcmp(op, "force_open") == 0 ? bw_policy_breaker_force_open(p)
                    : strcmp(op, "disable") == 0  ? bw_policy_breaker_disable(p)
                                                  : bw_policy_breaker_reset(p);
    if (got != want) fail(r, "%s; expected %s", bw_status_str(got), bw_status_str(want));
}

static void step_expect_state(run *r, fields *f) {
    bw_policy *p = policy(r, str(f, "policy"));
    const char *state = str(f, "state");
    int32_t want = code_of(r, STATES, COUNT(STATES), "breaker state", state);
    uint64_t generation = 0;
    bool has_generation = opt_uint(f, "generation", &generation);
    finish(f);
    bw_policy_stats s;
    stats(r, p, &s);
    if (s.breaker_state < 0) fail(r, "the policy has no breaker");
    if (s.breaker_state != want || (has_generation && s.breaker_generation != generation))
        fail(r, "state %s generation %" PRIu64 "; expected %s generation %s%" PRIu64,
             name_of(STATES, COUNT(STATES), s.breaker_state), s.breaker_generation, state,
             has_generation ? "" : "(any) ", generation);
}

static void step_expect_counters(run *r, fields *f) {
    bw_policy *p = policy(r, str(f, "policy"));
    const json *counters = req(f, "counters");
    finish(f);
    if (counters->type != JSON_OBJECT) fail(r, "`counters` must be an object");
    if (counters->count == 0) fail(r, "names no counter");
    bw_policy_stats s;
    stats(r, p, &s);
    char wrong[1024] = "";
    fields c;
    fields_open(&c, r, "counters", counters);
    for (size_t i = 0; i < counters->count; i++) {
        const char *name = counters->keys[i];
        int64_t want = int_of(&c, name, &counters->items[i]);
        int64_t got;
        if (!counter(&s, name, &got)) fail(r, "unknown counter `%s`", name);
        if (want < 0 && strcmp(name, "limiter_available") != 0)
            fail(r, "counter `%s` cannot be negative", name);
        if (got != want) {
            size_t used = strlen(wrong);
            snprintf(wrong + used, sizeof wrong - used, "%s%s = %" PRId64 " (expected %" PRId64 ")",
                     used ? ", " : "", name, got, want);
        }
    }
    if (wrong[0]) fail(r, "%s", wrong);
}

static void describe_event(const event_record *e, char *out, size_t len) {
    switch (e->kind) {
    case BW_EVENT_TRANSITION:
        snprintf(out, len, "transition %s %s->%s generation %" PRIu64 " at %" PRIu64, e->policy,
                 name_of(STATES, COUNT(STATES), e->from), name_of(STATES, COUNT(STATES), e->to),
                 e->generation, e->at_ns);
        break;
    case BW_EVENT_BUDGET_EXHAUSTED:
        snprintf(out, len, "budget_exhausted %s at %" PRIu64, e->policy, e->at_ns);
        break;
    case BW_EVENT_RELOAD:
        snprintf(out, len, "reload added %" PRIu64 " removed %" PRIu64 " changed %" PRIu64, e->added,
                 e->removed, e->changed);
        break;
    default:
        snprintf(out, len, "event of kind %d", (int)e->kind);
    }
}

static void step_expect_events(run *r, fields *f) {
    const json *events = req(f, "events");
    finish(f);
    if (events->type != JSON_ARRAY) fail(r, "`events` must be an array");
    char got_text[1024] = "", want_text[1024] = "";
    bool same = !r->events_lost && events->count == r->events.len;
    for (size_t i = 0; i < events->count; i++) {
        fields e;
        fields_open(&e, r, "event", &events->items[i]);
        const char *kind = str(&e, "kind");
        event_record want = {0, 0, 0, 0, NULL, 0, 0, 0, 0, 0};
        if (strcmp(kind, "transition") == 0) {
            want.kind = BW_EVENT_TRANSITION;
            want.policy = (char *)str(&e, "policy");
            want.from = code_of(r, STATES, COUNT(STATES), "breaker state", str(&e, "from"));
            want.to = code_of(r, STATES, COUNT(STATES), "breaker state", str(&e, "to"));
            want.generation = uint_req(&e, "generation");
            want.at_ns = uint_req(&e, "at_ns");
        } else if (strcmp(kind, "budget_exhausted") == 0) {
            want.kind = BW_EVENT_BUDGET_EXHAUSTED;
            want.policy = (char *)str(&e, "policy");
            want.at_ns = uint_req(&e, "at_ns");
        } else if (strcmp(kind, "reload") == 0) {
            want.kind = BW_EVENT_RELOAD;
            want.policy = "";
            want.added = uint_req(&e, "added");
            want.removed = uint_req(&e, "removed");
            want.changed = uint_req(&e, "changed");
        } else {
            fail(r, "unknown event kind `%s`", kind);
        }
        finish(&e);
        char one[256];
        describe_event(&want, one, sizeof one);
        size_t used = strlen(want_text);
        snprintf(want_text + used, sizeof want_text - used, "%s[%s]", used ? " " : "", one);
        if (same && i < r->events.len) {
            const event_record *g = &r->events.items[i];
            same = g->kind == want.kind && strcmp(g->policy, want.policy) == 0 &&
                   g->generation == want.generation && g->at_ns == want.at_ns &&
                   g->added == want.added && g->removed == want.removed && g->changed == want.changed &&
                   (want.kind != BW_EVENT_TRANSITION || (g->from == want.from && g->to == want.to));
        }
    }
    for (size_t i = 0; i < r->events.len; i++) {
        char one[256];
        describe_event(&r->events.items[i], one, sizeof one);
        size_t used = strlen(got_text);
        snprintf(got_text + used, sizeof got_text - used, "%s[%s]", used ? " " : "", one);
        free(r->events.items[i].policy);
    }
    r->events.len = 0;
    bool lost = r->events_lost;
    r->events_lost = false;
    if (!same) fail(r, "events %s%s; expected %s", got_text, lost ? " (some lost: out of memory)" : "", want_text);
}

static void step_retry_begin(run *r, fields *f) {
    bw_policy *p = policy(r, str(f, "policy"));
    const char *id = str(f, "id");
    uint64_t seed = uint_req(f, "seed");
    uint64_t deadline = 0;
    bool has_deadline = opt_uint(f, "deadline_ns", &deadline);
    finish(f);
    if (has_deadline && deadline == 0) fail(r, "`deadline_ns` must be at least 1");
    new_id(r, id);
    bw_retry_state *state = NULL;
    bw_status status = bw_policy_retry_begin(p, seed, deadline, &state);
    if (status != BW_OK) fail(r, "bw_policy_retry_begin: %s: %s", bw_status_str(status), last_error());
    retry_slot slot = {copy(id), bw_policy_clone(p), state};
    PUSH(r->retries, slot);
}

static void step_retry_next(run *r, fields *f) {
    const char *id = str(f, "id");
    uint32_t what = (uint32_t)code_of(r, RETRY_CLASSES, COUNT(RETRY_CLASSES), "retry class", str(f, "what"));
    uint64_t retry_after = BW_RETRY_AFTER_NONE, delay = 0;
    opt_uint(f, "retry_after_ns", &retry_after);
    bool has_delay = opt_uint(f, "delay_ns", &delay);
    const char *reason = opt_str(f, "reason");
    const char *expect = str(f, "expect");
    finish(f);
    bool retry = strcmp(expect, "retry") == 0;
    if (!((retry && has_delay && !reason) || (strcmp(expect, "give_up") == 0 && !has_delay && reason)))
        fail(r, "`expect` is `retry` with `delay_ns` or `give_up` with `reason`");
    int32_t want_reason = reason ? code_of(r, GIVE_UPS, COUNT(GIVE_UPS), "give-up reason", reason) : 0;
    for (size_t i = 0; i < r->retries.len; i++) {
        retry_slot *s = &r->retries.items[i];
        if (strcmp(s->id, id) != 0) continue;
        uint64_t got_delay = 0;
        int32_t got_reason = 0;
        bw_status status = bw_policy_retry_next(s->policy, s->state, what, retry_after, &got_delay, &got_reason);
        if (status == BW_OK) {
            if (!retry || got_delay != delay)
                fail(r, "retry after %" PRIu64 " ns; expected %s %" PRIu64, got_delay, expect,
                     retry ? delay : (uint64_t)0);
        } else if (status == BW_RETRY_GIVE_UP) {
            if (retry || got_reason != want_reason)
                fail(r, "give up (%s); expected %s", name_of(GIVE_UPS, COUNT(GIVE_UPS), got_reason), expect);
        } else {
            fail(r, "bw_policy_retry_next: %s: %s", bw_status_str(status), last_error());
        }
        return;
    }
    fail(r, "no retry `%s`", id);
}

static void step(run *r, const json *value) {
    char what[64];
    snprintf(what, sizeof what, "step %zu", r->step);
    fields f;
    fields_open(&f, r, what, value);
    const char *op = str(&f, "op");
    r->op = op;
    if (strcmp(op, "advance") == 0) {
        uint64_t ns = uint_req(&f, "ns");
        finish(&f);
        bw_clock_advance(r->clock, ns);
    } else if (strcmp(op, "set_clock") == 0) {
        uint64_t ns = uint_req(&f, "ns");
        finish(&f);
        if (ns == 0) fail(r, "`ns` must be at least 1");
        bw_clock_set(r->clock, ns);
    } else if (strcmp(op, "acquire") == 0) {
        step_acquire(r, &f);
    } else if (strcmp(op, "complete") == 0) {
        step_complete(r, &f);
    } else if (strcmp(op, "limiter_acquire") == 0) {
        step_limiter(r, &f, false);
    } else if (strcmp(op, "reserve") == 0) {
        step_limiter(r, &f, true);
    } else if (strcmp(op, "cancel") == 0) {
        step_cancel(r, &f);
    } else if (strcmp(op, "expect_limiter") == 0) {
        step_expect_limiter(r, &f);
    } else if (strcmp(op, "reload") == 0) {
        const char *text = str(&f, "policy_file");
        const char *expect = str(&f, "expect");
        finish(&f);
        bw_status want;
        if (strcmp(expect, "ok") == 0) want = BW_OK;
        else if (strcmp(expect, "invalid_config") == 0) want = BW_INVALID_CONFIG;
        else fail(r, "unknown answer `%s`", expect);
        bw_status got = bw_engine_reload_toml(r->engine, text);
        if (got != want) fail(r, "reload %s (%s); expected %s", bw_status_str(got), got ? last_error() : "", expect);
    } else if (strcmp(op, "lookup") == 0) {
        const char *name = str(&f, "policy");
        const char *expect = str(&f, "expect");
        finish(&f);
        bool found = strcmp(expect, "found") == 0;
        if (!found && strcmp(expect, "not_found") != 0) fail(r, "unknown answer `%s`", expect);
        bw_policy *p = NULL;
        bw_status got = bw_engine_policy(r->engine, name, &p);
        if (got == BW_OK && !found) {
            bw_policy_free(p);
            fail(r, "`%s` found; expected not_found", name);
        }
        if (got != BW_OK && found) fail(r, "`%s` not found (%s)", name, bw_status_str(got));
        if (got == BW_OK) {
            for (size_t i = 0; i < r->handles.len; i++) {
                if (strcmp(r->handles.items[i].name, name) == 0) {
                    bw_policy_free(r->handles.items[i].policy);
                    r->handles.items[i].policy = p;
                    return;
                }
            }
            handle_slot slot = {copy(name), p};
            PUSH(r->handles, slot);
        }
    } else if (strcmp(op, "chaos") == 0) {
        bw_policy *p = policy(r, str(&f, "policy"));
        bool enabled = boolean_of(&f, "enabled", req(&f, "enabled"));
        finish(&f);
        bw_status got = bw_policy_chaos_set_enabled(p, enabled);
        if (got != BW_OK) fail(r, "bw_policy_chaos_set_enabled: %s", bw_status_str(got));
    } else if (strcmp(op, "force_open") == 0 || strcmp(op, "disable") == 0 || strcmp(op, "reset") == 0) {
        step_switch(r, &f, op);
    } else if (strcmp(op, "expect_state") == 0) {
        step_expect_state(r, &f);
    } else if (strcmp(op, "expect_counters") == 0) {
        step_expect_counters(r, &f);
    } else if (strcmp(op, "expect_events") == 0) {
        step_expect_events(r, &f);
    } else if (strcmp(op, "retry_begin") == 0) {
        step_retry_begin(r, &f);
    } else if (strcmp(op, "retry_next") == 0) {
        step_retry_next(r, &f);
    } else {
        fail(r, "unknown op `%s`", op);
    }
}

/* ---- one scenario ------------------------------------------------------------------------ */

static bool name_ok(const char *name) {
    if (!*name) return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) return false;
    return true;
}

static void release(run *r) {
    for (size_t i = 0; i < r->permits.len; i++) {
        permit_slot *s = &r->permits.items[i];
        if (!s->done) bw_policy_complete(s->policy, &s->permit, BW_OUTCOME_IGNORED, BW_DURATION_UNKNOWN);
        bw_policy_free(s->policy);
        free(s->id);
    }
    for (size_t i = 0; i < r->retries.len; i++) {
        bw_retry_state_free(r->retries.items[i].state);
        bw_policy_free(r->retries.items[i].policy);
        free(r->retries.items[i].id);
    }
    for (size_t i = 0; i < r->reservations.len; i++) free(r->reservations.items[i].id);
    for (size_t i = 0; i < r->handles.len; i++) {
        bw_policy_free(r->handles.items[i].policy);
        free(r->handles.items[i].name);
    }
    for (size_t i = 0; i < r->limiters.len; i++) {
        bw_limiter_free(r->limiters.items[i].limiter);
        free(r->limiters.items[i].name);
    }
    for (size_t i = 0; i < r->events.len; i++) free(r->events.items[i].policy);
    free(r->permits.items);
    free(r->retries.items);
    free(r->reservations.items);
    free(r->handles.items);
    free(r->limiters.items);
    free(r->events.items);
    bw_engine_free(r->engine);
    bw_clock_free(r->clock);
}

/* Runs the scenario in `doc` (file name without .json: `stem`); 0 when it passed, else
 * -1 with the reason in `message`. */
static int run_scenario(const json *doc, const char *stem, char *message, size_t len) {
    run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(message, len, "out of memory");
        return -1;
    }
    int result = 0;
    if (setjmp(r->fail) != 0) {
        snprintf(message, len, "%s", r->message);
        result = -1;
        goto done;
    }
    fields top;
    fields_open(&top, r, "scenario", doc);
    if (uint_req(&top, "format") != 1) fail(r, "scenario: unknown format");
    const char *name = str(&top, "name");
    if (!name_ok(name)) fail(r, "scenario: name `%s` is not [a-z0-9_]+", name);
    if (strcmp(name, stem) != 0) fail(r, "scenario: name `%s` differs from the file name `%s`", name, stem);
    const char *description = str(&top, "description");
    if (strspn(description, " \t\n\r") == strlen(description)) fail(r, "scenario: empty description");
    uint64_t start = uint_req(&top, "clock_start_ns");
    if (start == 0) fail(r, "scenario: clock_start_ns must be at least 1");
    const char *policy_file = str(&top, "policy_file");
    const json *limiters = opt(&top, "limiters");
    const json *steps = req(&top, "steps");
    finish(&top);
    if (limiters && limiters->type != JSON_OBJECT)
        fail(r, "scenario: `limiters` must be an object, found %s", json_kind(limiters));
    if (steps->type != JSON_ARRAY) fail(r, "scenario: `steps` must be an array, found %s", json_kind(steps));

    if (bw_clock_new_manual(start, &r->clock) != BW_OK) fail(r, "bw_clock_new_manual: %s", last_error());
    if (bw_engine_from_toml(policy_file, r->clock, &r->engine) != BW_OK)
        fail(r, "policy_file refused: %s", last_error());
    if (bw_engine_set_listener(r->engine, on_event, r) != BW_OK) fail(r, "bw_engine_set_listener: %s", last_error());
    for (size_t i = 0; limiters && i < limiters->count; i++) {
        char what[300];
        snprintf(what, sizeof what, "limiter `%s`", limiters->keys[i]);
        fields lf;
        fields_open(&lf, r, what, &limiters->items[i]);
        uint64_t rate = uint_req(&lf, "rate"), period = uint_req(&lf, "period_ns"), burst = uint_req(&lf, "burst");
        finish(&lf);
        bw_limiter_config *config = NULL;
        bw_limiter *l = NULL;
        if (bw_limiter_config_new(&config) != BW_OK) fail(r, "bw_limiter_config_new: %s", last_error());
        bw_limiter_config_set_rate(config, rate, period);
        bw_limiter_config_set_burst(config, burst);
        bw_status status = bw_limiter_new(config, r->clock, &l);
        bw_limiter_config_free(config);
        if (status != BW_OK) fail(r, "%s refused: %s", what, last_error());
        limiter_slot slot = {copy(limiters->keys[i]), l};
        PUSH(r->limiters, slot);
    }
    for (size_t i = 0; i < steps->count; i++) {
        r->step = i + 1;
        r->op = "?";
        step(r, &steps->items[i]);
    }
    for (size_t i = 0; i < r->permits.len; i++) {
        if (!r->permits.items[i].done) {
            r->op = "end";
            fail(r, "permit `%s` never completed", r->permits.items[i].id);
        }
    }
done:
    release(r);
    free(r);
    return result;
}

/* ---- main ---------------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path, size_t *len) {
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    size_t cap = 4096, n = 0;
    char *data = malloc(cap);
    while (data) {
        n += fread(data + n, 1, cap - n, file);
        if (n < cap) break;
        char *grown = realloc(data, cap * 2);
        if (!grown) {
            free(data);
            data = NULL;
            break;
        }
        data = grown;
        cap *= 2;
    }
    int bad = ferror(file);
    fclose(file);
    if (bad) {
        free(data);
        return NULL;
    }
    *len = n;
    return data;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCENARIO_DIR\n", argv[0]);
        return 2;
    }
    char err[512];
    if (json_self_check(err, sizeof err) != 0) {
        printf("conformance: the JSON reader is wrong: %s\n", err);
        return 1;
    }
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        fprintf(stderr, "conformance: cannot open %s\n", argv[1]);
        return 1;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    for (struct dirent *entry; (entry = readdir(dir)) != NULL;) {
        size_t n = strlen(entry->d_name);
        if (n <= 5 || strcmp(entry->d_name + n - 5, ".json") != 0) continue;
        grow((void **)&names, &cap, count, sizeof *names);
        names[count++] = copy(entry->d_name);
    }
    closedir(dir);
    qsort(names, count, sizeof *names, by_name);
    size_t passed = 0, failed = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096], message[2048];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
        names[i][strlen(names[i]) - 5] = '\0';
        size_t len = 0;
        char *text = read_file(path, &len);
        json doc;
        int ok;
        if (!text) {
            snprintf(message, sizeof message, "cannot read the file");
            ok = -1;
        } else if (json_parse(text, len, &doc, message, sizeof message) != 0) {
            ok = -1;
        } else {
            ok = run_scenario(&doc, names[i], message, sizeof message);
            json_free(&doc);
        }
        free(text);
        if (ok == 0) {
            passed++;
        } else {
            failed++;
            printf("FAIL %s: %s\n", names[i], message);
        }
        free(names[i]);
    }
    free(names);
    if (failed == 0)
        printf("conformance: %zu scenarios passed\n", passed);
    else
        printf("conformance: %zu scenarios passed, %zu failed\n", passed, failed);
    return failed > 0 || count == 0 ? 1 : 0;
}
