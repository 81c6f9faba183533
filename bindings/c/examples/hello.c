/* The README's C quick start (the test command checks they are the same). */
#include <stdio.h>
#include "breakwater.h"

int main(void) {
    bw_engine *engine = NULL;
    bw_policy *payments = NULL;
    if (bw_engine_from_toml("[policies.payments.circuit_breaker]\nminimum_calls = 4\n", NULL, &engine) != BW_OK) return 1;
    if (bw_engine_policy(engine, "payments", &payments) != BW_OK) return 1;
    for (int i = 0; i < 6; i++) {
        bw_permit permit;
        uint64_t retry_after_ns = 0;
        int status = bw_policy_acquire(payments, BW_PRIORITY_DEFAULT, &permit, &retry_after_ns);
        if (status != BW_OK) { printf("call %d: %s\n", i, bw_status_str(status)); continue; }
        int ok = i % 2 == 0; /* a flaky dependency */
        bw_policy_complete(payments, &permit, ok ? BW_OUTCOME_SUCCESS : BW_OUTCOME_FAILURE, BW_DURATION_UNKNOWN);
    }
    bw_policy_free(payments);
    bw_engine_free(engine);
    return 0;
}
