/* A breaker-protected call from C. Build (see README):
 *   cc -std=c11 -Iinclude hello.c target/release/libbreakwater.a -lpthread -ldl -lm */
#include <stdio.h>
#include "breakwater.h"

static int call_payment_service(int i) { return i % 2 == 0 ? 0 : -1; /* flaky */ }

int main(void) {
    const char *policies =
        "[policies.payments.circuit_breaker]\n"
        "minimum_calls = 4\nfailure_rate_threshold = 50\n";
    bw_engine *engine = NULL;
    bw_policy *payments = NULL;
    if (bw_engine_from_toml(policies, NULL, &engine) != BW_OK) return 1;
    if (bw_engine_policy(engine, "payments", &payments) != BW_OK) return 1;
    for (int i = 0; i < 6; i++) {
        bw_permit permit;
        uint64_t retry_after_ns = 0;
        int status = bw_policy_acquire(payments, BW_PRIORITY_DEFAULT, &permit, &retry_after_ns);
        if (status != BW_OK) {
            printf("call %d: %s, retry after %.1f s\n", i, bw_status_str(status), retry_after_ns / 1e9);
            continue;
        }
        int ok = call_payment_service(i) == 0;
        bw_policy_complete(payments, &permit, ok ? BW_OUTCOME_SUCCESS : BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN);
        printf("call %d: %s\n", i, ok ? "ok" : "failed");
    }
    bw_policy_free(payments);
    bw_engine_free(engine);
    return 0;
}
