/* What one policy acquire + complete costs a C caller, linked statically or against the
 * shared library (where thread-local storage goes through __tls_get_addr). A timing
 * tool, not a test: `make -C bindings/c bench` prints nanoseconds per call; speed goals
 * live in the criterion benches (benches/ffi.rs, benches/metrics.rs). */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "breakwater.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Best of `rounds` runs of `calls` acquire+complete pairs, in ns per pair. */
static double best_ns_per_call(const bw_policy *policy, uint64_t duration_ns, long calls, int rounds) {
    double best = 1e18;
    for (int r = 0; r < rounds; r++) {
        double start = now_ns();
        for (long i = 0; i < calls; i++) {
            bw_permit permit;
            if (bw_policy_acquire(policy, BW_PRIORITY_DEFAULT, &permit, NULL) != BW_OK) abort();
            uint64_t d = duration_ns == BW_DURATION_UNKNOWN
                             ? BW_DURATION_UNKNOWN
                             : duration_ns + (uint64_t)(i & 1023) * 977; /* varied buckets */
            if (bw_policy_complete(policy, &permit, BW_OUTCOME_SUCCESS, d) != BW_OK) abort();
        }
        double per_call = (now_ns() - start) / (double)calls;
        if (per_call < best) best = per_call;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *label = argc > 1 ? argv[1] : "";
    long calls = argc > 2 ? atol(argv[2]) : 5000000L;
    bw_engine *engine = NULL;
    bw_policy *policy = NULL;
    const char *toml = "[policies.p.circuit_breaker]\nminimum_calls = 100\n"
                       "[policies.p.bulkhead]\nmax_concurrent = 64\n";
    if (bw_engine_from_toml(toml, NULL, &engine) != BW_OK) return 1;
    if (bw_engine_policy(engine, "p", &policy) != BW_OK) return 1;
    double untimed = best_ns_per_call(policy, BW_DURATION_UNKNOWN, calls, 5);
    double timed = best_ns_per_call(policy, 20000, calls, 5);
    printf("%-8s policy (breaker+bulkhead) acquire+complete: %.1f ns untimed, %.1f ns with a duration\n",
           label, untimed, timed);
    bw_policy_free(policy);
    bw_engine_free(engine);
    return 0;
}
