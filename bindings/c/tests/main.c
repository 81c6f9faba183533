/* Runner of the C suite: every test listed in tests.def, then "N passed, N failed". */
#include "bw_test.h"

int bw_test_failures = 0;

#define TEST(name) void test_##name(void);
#include "tests.def"
#undef TEST

struct test_case {
    const char *name;
    void (*run)(void);
};

static const struct test_case TESTS[] = {
#define TEST(name) {#name, test_##name},
#include "tests.def"
#undef TEST
};

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        if (only != NULL && strstr(TESTS[i].name, only) == NULL) {
            continue;
        }
        int before = bw_test_failures;
        TESTS[i].run();
        if (bw_test_failures == before) {
            passed++;
            printf("ok   %s\n", TESTS[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", TESTS[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
