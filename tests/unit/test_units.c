/*
 * test_units.c — the shared grammar of sizes, durations, counts and booleans
 * (src/hub/units.c): every form, overflow, junk, negatives, the bounds, and the
 * sub-millisecond rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "hub/units.c"

/* Returns the size s parses to within [0, UINT64_MAX], or fails the test. */
static uint64_t size_ok(const char *s)
{
    uint64_t v = 12345;
    int e = units_size(s, 0, UINT64_MAX, &v);
    if (e != UNITS_OK) fail_msg("'%s' rejected: %s", s, units_strerror(e));
    return v;
}

/* Every size form: plain bytes, k/m/g in any case, with B or iB. */
static void test_size_forms(void **state)
{
    (void)state;
    assert_int_equal(size_ok("0"), 0);
    assert_int_equal(size_ok("1"), 1);
    assert_int_equal(size_ok("100B"), 100);
    assert_int_equal(size_ok("100b"), 100);
    assert_int_equal(size_ok("64k"), 65536);
    assert_int_equal(size_ok("64K"), 65536);
    assert_int_equal(size_ok("64KB"), 65536);
    assert_int_equal(size_ok("64kib"), 65536);
    assert_int_equal(size_ok("1m"), 1048576);
    assert_int_equal(size_ok("1MB"), 1048576);
    assert_int_equal(size_ok("1MiB"), 1048576);
    assert_int_equal(size_ok("2g"), 2147483648ull);
    assert_int_equal(size_ok("2GiB"), 2147483648ull);
    assert_int_equal(size_ok("007"), 7);
    assert_int_equal(size_ok("18446744073709551615"), UINT64_MAX);
    assert_int_equal(size_ok("17179869183g"), 17179869183ull << 30);
}

/* Junk, negatives, empty strings and overflows are refused, and *out is left alone. */
static void test_size_errors(void **state)
{
    (void)state;
    static const char *const junk[] = {"k",   "1x",   "1kk", "1 k",   " 1",   "1 ", "+1",  "1.5k",
                                       "1e3", "0x10", "1iB", "1kiB2", "1kBB", "1t", "1mi", "abc"};
    uint64_t v = 99;
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
        assert_int_equal(units_size(junk[i], 0, UINT64_MAX, &v), UNITS_JUNK);
    assert_int_equal(units_size("", 0, UINT64_MAX, &v), UNITS_EMPTY);
    assert_int_equal(units_size("-1", 0, UINT64_MAX, &v), UNITS_NEGATIVE);
    assert_int_equal(units_size("-1k", 0, UINT64_MAX, &v), UNITS_NEGATIVE);
    assert_int_equal(units_size("18446744073709551616", 0, UINT64_MAX, &v), UNITS_RANGE);
    assert_int_equal(units_size("99999999999999999999999", 0, UINT64_MAX, &v), UNITS_RANGE);
    assert_int_equal(units_size("17179869184g", 0, UINT64_MAX, &v), UNITS_RANGE);
    assert_int_equal(units_size("18014398509481984k", 0, UINT64_MAX, &v), UNITS_RANGE);
    assert_int_equal(v, 99);
}

/* The option's own bounds, inclusive, checked after the suffix is applied. */
static void test_size_bounds(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(units_size("0", 1, 100, &v), UNITS_RANGE);
    assert_int_equal(units_size("1", 1, 100, &v), UNITS_OK);
    assert_int_equal(v, 1);
    assert_int_equal(units_size("100", 1, 100, &v), UNITS_OK);
    assert_int_equal(units_size("101", 1, 100, &v), UNITS_RANGE);
    assert_int_equal(units_size("16m", 0, 16u << 20, &v), UNITS_OK);
    assert_int_equal(v, 16u << 20);
    assert_int_equal(units_size("16777217", 0, 16u << 20, &v), UNITS_RANGE);
    assert_int_equal(units_size("1k", 0, 1023, &v), UNITS_RANGE);
}

/* Returns the milliseconds s parses to within [0, max], or fails the test. */
static uint32_t ms_ok(const char *s)
{
    uint32_t v = 12345;
    int e = units_duration_ms(s, 0, UNITS_DURATION_MAX_MS, &v);
    if (e != UNITS_OK) fail_msg("'%s' rejected: %s", s, units_strerror(e));
    return v;
}

/* Every duration form: seconds by default, fractions, ms, s, m, h in any case. */
static void test_duration_forms(void **state)
{
    (void)state;
    assert_int_equal(ms_ok("0"), 0);
    assert_int_equal(ms_ok("0.0"), 0);
    assert_int_equal(ms_ok("0ms"), 0);
    assert_int_equal(ms_ok("2"), 2000);
    assert_int_equal(ms_ok("2s"), 2000);
    assert_int_equal(ms_ok("2S"), 2000);
    assert_int_equal(ms_ok("1.5"), 1500);
    assert_int_equal(ms_ok(".5"), 500);
    assert_int_equal(ms_ok("5."), 5000);
    assert_int_equal(ms_ok("500ms"), 500);
    assert_int_equal(ms_ok("500MS"), 500);
    assert_int_equal(ms_ok("1m"), 60000);
    assert_int_equal(ms_ok("1.5m"), 90000);
    assert_int_equal(ms_ok("2h"), 7200000);
    assert_int_equal(ms_ok("0.25h"), 900000);
    assert_int_equal(ms_ok("1.0004"), 1000); /* nearest millisecond */
    assert_int_equal(ms_ok("1.0005"), 1001); /* half up */
    assert_int_equal(ms_ok("2.4ms"), 2);
    assert_int_equal(ms_ok("4294967295ms"), UINT32_MAX);
    assert_int_equal(ms_ok("4294967.295"), UINT32_MAX);
}

/* The sub-millisecond rule: a non-zero duration is never 0 ms (0.0001 s is 1 ms, not "off"). */
static void test_duration_sub_ms(void **state)
{
    (void)state;
    assert_int_equal(ms_ok("0.0001"), 1);
    assert_int_equal(ms_ok("0.000000001"), 1);
    assert_int_equal(ms_ok("0.0000000001"), 1); /* any non-zero digit counts */
    assert_int_equal(ms_ok("0.1ms"), 1);
    assert_int_equal(ms_ok("0.0004"), 1);
    assert_int_equal(ms_ok("0.0014"), 1);
    assert_int_equal(ms_ok("0.0015"), 2);
    assert_int_equal(ms_ok("0.000"), 0);
}

/* Junk, negatives, empty strings, overflow and the bounds. */
static void test_duration_errors(void **state)
{
    (void)state;
    static const char *const junk[] = {".",   "s",   "ms",  "1x",   "1 s",  " 1",    "1sec", "+1",
                                       "1e3", "inf", "nan", "0x10", "1..5", "1.5.2", "1mss", "1d"};
    uint32_t v = 99;
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        int e = units_duration_ms(junk[i], 0, UNITS_DURATION_MAX_MS, &v);
        if (e != UNITS_JUNK) fail_msg("'%s' gave %d", junk[i], e);
    }
    assert_int_equal(units_duration_ms("", 0, UNITS_DURATION_MAX_MS, &v), UNITS_EMPTY);
    assert_int_equal(units_duration_ms("-1", 0, UNITS_DURATION_MAX_MS, &v), UNITS_NEGATIVE);
    assert_int_equal(units_duration_ms("-0.5s", 0, UNITS_DURATION_MAX_MS, &v), UNITS_NEGATIVE);
    assert_int_equal(units_duration_ms("4294967296ms", 0, UNITS_DURATION_MAX_MS, &v), UNITS_RANGE);
    assert_int_equal(units_duration_ms("4294967.296", 0, UNITS_DURATION_MAX_MS, &v), UNITS_RANGE);
    assert_int_equal(units_duration_ms("1193047h", 0, UNITS_DURATION_MAX_MS, &v), UNITS_RANGE);
    assert_int_equal(units_duration_ms("99999999999999999999999", 0, UNITS_DURATION_MAX_MS, &v),
                     UNITS_RANGE);
    assert_int_equal(v, 99);
    assert_int_equal(units_duration_ms("0", 1, 1000, &v), UNITS_RANGE);
    assert_int_equal(units_duration_ms("0.0001", 1, 1000, &v), UNITS_OK); /* 1 ms: > 0 */
    assert_int_equal(v, 1);
    assert_int_equal(units_duration_ms("1", 1, 1000, &v), UNITS_OK);
    assert_int_equal(units_duration_ms("1001ms", 1, 1000, &v), UNITS_RANGE);
}

/* Counts: plain decimal only, bounds inclusive. */
static void test_count(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(units_count("42", 1, 100, &v), UNITS_OK);
    assert_int_equal(v, 42);
    assert_int_equal(units_count("0", 1, 100, &v), UNITS_RANGE);
    assert_int_equal(units_count("101", 1, 100, &v), UNITS_RANGE);
    assert_int_equal(units_count("1k", 1, 100000, &v), UNITS_JUNK);
    assert_int_equal(units_count("1.0", 1, 100, &v), UNITS_JUNK);
    assert_int_equal(units_count("-3", 0, 100, &v), UNITS_NEGATIVE);
    assert_int_equal(units_count("", 0, 100, &v), UNITS_EMPTY);
    assert_int_equal(units_count("18446744073709551616", 0, UINT64_MAX, &v), UNITS_RANGE);
}

/* Booleans: the eight words in any case, nothing else. */
static void test_bool(void **state)
{
    (void)state;
    static const char *const t[] = {"true", "TRUE", "yes", "Yes", "on", "ON", "1"};
    static const char *const f[] = {"false", "False", "no", "NO", "off", "Off", "0"};
    for (size_t i = 0; i < 7; i++) {
        bool v = false;
        assert_int_equal(units_bool(t[i], &v), UNITS_OK);
        assert_true(v);
        v = true;
        assert_int_equal(units_bool(f[i], &v), UNITS_OK);
        assert_false(v);
    }
    bool v = true;
    assert_int_equal(units_bool("", &v), UNITS_EMPTY);
    assert_int_equal(units_bool("2", &v), UNITS_JUNK);
    assert_int_equal(units_bool("truee", &v), UNITS_JUNK);
    assert_int_equal(units_bool(" true", &v), UNITS_JUNK);
    assert_int_equal(units_bool("y", &v), UNITS_JUNK);
    assert_true(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_forms),      cmocka_unit_test(test_size_errors),
        cmocka_unit_test(test_size_bounds),     cmocka_unit_test(test_duration_forms),
        cmocka_unit_test(test_duration_sub_ms), cmocka_unit_test(test_duration_errors),
        cmocka_unit_test(test_count),           cmocka_unit_test(test_bool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
