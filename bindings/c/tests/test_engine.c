#define _POSIX_C_SOURCE 200809L
/* Engines: policy files, lookups, reload, the global engine, exposition and health. */
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>
#include "bw_test.h"

static const char *POLICIES =
    "[policies.payments]\n"
    "timeout = \"3s\"\n"
    "[policies.payments.circuit_breaker]\n"
    "failure_rate_threshold = 50\n"
    "minimum_calls = 4\n"
    "window = { type = \"count\", size = 10 }\n"
    "open_duration = \"30s\"\n"
    "[policies.search.bulkhead]\n"
    "max_concurrent = 2\n";

void test_engine_from_toml_and_lookup(void) {
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(POLICIES, NULL, &engine));
    bw_policy *payments = NULL, *search = NULL, *missing = (bw_policy *)0x1;
    CHECK_OK(bw_engine_policy(engine, "payments", &payments));
    CHECK_OK(bw_engine_policy(engine, "search", &search));
    CHECK_STATUS(bw_engine_policy(engine, "nope", &missing), BW_NOT_FOUND);
    CHECK(missing == (bw_policy *)0x1); /* untouched on failure */
    CHECK_ERROR_MENTIONS("nope");
    bw_engine *again = bw_engine_clone(engine);
    CHECK(again == engine);
    bw_engine_free(again);
    bw_policy_free(search);
    bw_policy_free(payments);
    bw_engine_free(engine);
    bw_engine_free(NULL);
    bw_policy_free(NULL);
}

void test_engine_null_and_bad_input(void) {
    bw_engine *engine = NULL;
    CHECK_STATUS(bw_engine_from_toml(NULL, NULL, &engine), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_from_toml(POLICIES, NULL, NULL), BW_NULL_POINTER);
    CHECK(engine == NULL);
    /* Invalid UTF-8 is an invalid policy file (see
     * test_engine_invalid_utf8_is_a_config_error_with_a_line). */
    const char bad_utf8[] = "[policies.a\xff]\n";
    CHECK_STATUS(bw_engine_from_toml(bad_utf8, NULL, &engine), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("UTF-8");
    /* Bad TOML. */
    CHECK_STATUS(bw_engine_from_toml("[policies.a\nx = ", NULL, &engine), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("line");
    CHECK(engine == NULL);
    CHECK_OK(bw_engine_from_toml(POLICIES, NULL, &engine));
    bw_policy *p = NULL;
    CHECK_STATUS(bw_engine_policy(NULL, "payments", &p), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_policy(engine, NULL, &p), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_policy(engine, "payments", NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_reload_toml(NULL, POLICIES), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_reload_toml(engine, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_reload_path(engine, NULL), BW_NULL_POINTER);
    char *text = NULL;
    CHECK_STATUS(bw_engine_prometheus(NULL, &text), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_prometheus(engine, NULL), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_health(NULL, &text, NULL), BW_NULL_POINTER);
    CHECK(bw_engine_clone(NULL) == NULL);
    CHECK(text == NULL);
    bw_engine_free(engine);
}

void test_engine_invalid_config_names_field(void) {
    bw_engine *engine = NULL;
    const char *bad =
        "[policies.payments.circuit_breaker]\n"
        "failure_rate_threshold = 150\n";
    CHECK_STATUS(bw_engine_from_toml(bad, NULL, &engine), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("payments");
    CHECK_ERROR_MENTIONS("circuit_breaker.failure_rate_threshold");
    CHECK_ERROR_MENTIONS("line 2");
    CHECK(engine == NULL);
    CHECK_STATUS(bw_engine_from_toml("[policies.x.bulkhead]\nmax_concurent = 3\n", NULL, &engine), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("bulkhead.max_concurent");
}

void test_engine_from_path(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/breakwater-c-test-%ld.toml", (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, POLICIES, strlen(POLICIES)) == (ssize_t)strlen(POLICIES));
    close(fd);
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_path(path, NULL, &engine));
    bw_policy *p = NULL;
    CHECK_OK(bw_engine_policy(engine, "search", &p));
    bw_policy_free(p);
    CHECK_OK(bw_engine_reload_path(engine, path));
    unlink(path);
    CHECK_STATUS(bw_engine_reload_path(engine, path), BW_IO_ERROR);
    bw_engine *other = NULL;
    CHECK_STATUS(bw_engine_from_path("/nonexistent/breakwater.toml", NULL, &other), BW_IO_ERROR);
    CHECK_ERROR_MENTIONS("cannot read");
    CHECK(other == NULL);
    bw_engine_free(engine);
}

void test_engine_reload_keeps_state_and_handles_follow(void) {
    bw_clock *clock = NULL;
    CHECK_OK(bw_clock_new_manual(1, &clock));
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(POLICIES, clock, &engine));
    bw_policy *search = NULL;
    CHECK_OK(bw_engine_policy(engine, "search", &search));
    bw_permit held;
    CHECK_OK(bw_policy_acquire(search, BW_PRIORITY_DEFAULT, &held, NULL));
    /* Same file: the search policy object (and its taken slot) is kept. */
    CHECK_OK(bw_engine_reload_toml(engine, POLICIES));
    CHECK(!bw_policy_is_superseded(search));
    bw_policy *same = NULL;
    CHECK_OK(bw_engine_policy(engine, "search", &same));
    bw_permit a, b;
    uint64_t after = 0;
    CHECK_OK(bw_policy_acquire(same, BW_PRIORITY_DEFAULT, &a, NULL));
    CHECK_STATUS(bw_policy_acquire(same, BW_PRIORITY_DEFAULT, &b, &after), BW_BULKHEAD_FULL);
    CHECK_OK(bw_policy_complete(same, &a, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    /* A changed file gives search fresh stages under the same handle: the reference held
     * since before follows it at its next acquire, with no new lookup. The permit
     * taken before (from the old two-slot bulkhead) stays out of the new one. */
    bw_policy *payments = NULL;
    CHECK_OK(bw_engine_policy(engine, "payments", &payments));
    const char *changed = "[policies.search.bulkhead]\nmax_concurrent = 3\n";
    CHECK_OK(bw_engine_reload_toml(engine, changed));
    CHECK(!bw_policy_is_superseded(search));
    bw_permit fresh[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(bw_policy_acquire(search, BW_PRIORITY_DEFAULT, &fresh[i], NULL));
    }
    CHECK_STATUS(bw_policy_acquire(search, BW_PRIORITY_DEFAULT, &b, NULL), BW_BULKHEAD_FULL);
    /* The old permit completes against the stages that issued it: the new bulkhead
     * stays full. */
    CHECK_OK(bw_policy_complete(search, &held, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_STATUS(bw_policy_complete(search, &held, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN),
                 BW_PERMIT_ALREADY_USED);
    CHECK_STATUS(bw_policy_acquire(same, BW_PRIORITY_DEFAULT, &b, NULL), BW_BULKHEAD_FULL);
    CHECK_OK(bw_policy_complete(same, &fresh[0], BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    CHECK_OK(bw_policy_acquire(same, BW_PRIORITY_DEFAULT, &fresh[0], NULL));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(bw_policy_complete(search, &fresh[i], BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    }
    bw_policy_stats stats;
    CHECK_OK(bw_policy_get_stats(search, &stats));
    CHECK(stats.permitted == 6 && stats.success == 6);
    /* payments was removed: its reference keeps its last configuration and says so. */
    CHECK(bw_policy_is_superseded(payments));
    bw_permit p;
    CHECK_OK(bw_policy_acquire(payments, BW_PRIORITY_DEFAULT, &p, NULL));
    CHECK_OK(bw_policy_complete(payments, &p, BW_OUTCOME_SUCCESS, BW_DURATION_UNKNOWN));
    bw_policy *gone = NULL;
    CHECK_STATUS(bw_engine_policy(engine, "payments", &gone), BW_NOT_FOUND);
    /* An invalid reload changes nothing. */
    CHECK_STATUS(bw_engine_reload_toml(engine, "[policies.search.bulkhead]\nmax_concurrent = 0\n"), BW_INVALID_CONFIG);
    CHECK_OK(bw_policy_acquire(search, BW_PRIORITY_DEFAULT, &p, NULL));
    CHECK_OK(bw_policy_complete(search, &p, BW_OUTCOME_IGNORED, BW_DURATION_UNKNOWN));
    bw_policy_free(payments);
    bw_policy_free(same);
    bw_policy_free(search);
    bw_engine_free(engine);
    bw_clock_free(clock);
}

void test_engine_global(void) {
    bw_engine *global = NULL, *again = NULL;
    CHECK_OK(bw_engine_global(&global));
    CHECK_OK(bw_engine_global(&again));
    CHECK(global == again);
    CHECK_OK(bw_engine_reload_toml(global, "[policies.global_only.bulkhead]\nmax_concurrent = 1\n"));
    bw_policy *p = NULL;
    CHECK_OK(bw_engine_policy(again, "global_only", &p));
    bw_policy_free(p);
    CHECK_STATUS(bw_engine_global(NULL), BW_NULL_POINTER);
    bw_engine_free(again);
    bw_engine_free(global);
}

void test_engine_prometheus_and_health(void) {
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(POLICIES, NULL, &engine));
    bw_policy *p = NULL;
    CHECK_OK(bw_engine_policy(engine, "payments", &p));
    bw_permit permit;
    CHECK_OK(bw_policy_acquire(p, BW_PRIORITY_DEFAULT, &permit, NULL));
    CHECK_OK(bw_policy_complete(p, &permit, BW_OUTCOME_SUCCESS, 1000000));
    char *text = NULL;
    CHECK_OK(bw_engine_prometheus(engine, &text));
    CHECK(text != NULL && strstr(text, "breakwater_calls_total{policy=\"payments\",outcome=\"success\"} 1") != NULL);
    bw_string_free(text);
    int status = -1;
    char *json = NULL;
    CHECK_OK(bw_engine_health(engine, &json, &status));
    CHECK(status == 0);
    CHECK(json != NULL && strstr(json, "\"status\":\"healthy\"") != NULL);
    bw_string_free(json);
    bw_string_free(NULL);
    bw_policy_free(p);
    bw_engine_free(engine);
}

/* Text that is not UTF-8 is an invalid policy file, whichever way it comes in: the same
 * status and the line of the first invalid byte from the text and the path functions. */
void test_engine_invalid_utf8_is_a_config_error_with_a_line(void) {
    const char bad[] = "[policies.a.bulkhead]\nmax_concurrent = 3\n# caf\xe9\n";
    bw_engine *engine = NULL;
    CHECK_STATUS(bw_engine_from_toml(bad, NULL, &engine), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("UTF-8");
    CHECK_ERROR_MENTIONS("line 3");
    CHECK(engine == NULL);
    char path[64];
    snprintf(path, sizeof path, "/tmp/breakwater-c-utf8-%ld.toml", (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
    close(fd);
    CHECK_STATUS(bw_engine_from_path(path, NULL, &engine), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("UTF-8");
    CHECK_ERROR_MENTIONS("line 3");
    CHECK(engine == NULL);
    CHECK_OK(bw_engine_from_toml(POLICIES, NULL, &engine));
    CHECK_STATUS(bw_engine_reload_toml(engine, bad), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("line 3");
    CHECK_STATUS(bw_engine_reload_path(engine, path), BW_INVALID_CONFIG);
    CHECK_ERROR_MENTIONS("line 3");
    /* Nothing changed: the engine still has its policies. */
    bw_policy *search = NULL;
    CHECK_OK(bw_engine_policy(engine, "search", &search));
    bw_policy_free(search);
    unlink(path);
    bw_engine_free(engine);
}

void test_engine_policy_names(void) {
    bw_engine *engine = NULL;
    CHECK_OK(bw_engine_from_toml(POLICIES, NULL, &engine));
    char *names = NULL;
    CHECK_OK(bw_engine_policy_names(engine, &names));
    CHECK(strcmp(names, "payments\nsearch") == 0);
    bw_string_free(names);
    CHECK_STATUS(bw_engine_policy_names(NULL, &names), BW_NULL_POINTER);
    CHECK_STATUS(bw_engine_policy_names(engine, NULL), BW_NULL_POINTER);
    bw_policy *payments = NULL, *search = NULL;
    CHECK_OK(bw_engine_policy(engine, "payments", &payments));
    CHECK_OK(bw_engine_policy(engine, "search", &search));
    bw_policy_free(search);
    bw_policy_free(payments);
    CHECK_OK(bw_engine_reload_toml(engine, "[policies.only.bulkhead]\nmax_concurrent = 1\n"));
    CHECK_OK(bw_engine_policy_names(engine, &names));
    CHECK(strcmp(names, "only") == 0); /* follows the reload */
    bw_string_free(names);
    bw_engine_free(engine);
}
