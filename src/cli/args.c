/*
 * args.c — option values of `weft connect` and `weft bench` in the grammar every subcommand
 * shares (src/hub/units.h; `weft serve` reaches it through src/hub/config.c): each function
 * parses one value and, when it is bad, prints the one-line usage error naming the option,
 * the value, the expected form and what is wrong.
 */
#include "cli.h"
#include "hub/units.h"

/* Parses a size for `weft CMD --OPT`; see cli.h. Returns 0, or 2 after the error line. */
int cli_arg_size(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                 uint64_t *out)
{
    int e = units_size(val, min, max, out);
    if (e == UNITS_OK) return 0;
    return cli_usage_error(cmd,
                           "bad value '%s' for --%s: expected bytes from %llu to %llu "
                           "(e.g. 512, 64k, 1m, 1MiB): %s",
                           val, opt, (unsigned long long)min, (unsigned long long)max,
                           units_strerror(e));
}

/* Parses a duration for `weft CMD --OPT`; see cli.h. Returns 0, or 2 after the error line. */
int cli_arg_duration(const char *cmd, const char *opt, const char *val, uint32_t min_ms,
                     uint32_t *ms)
{
    int e = units_duration_ms(val, min_ms, UNITS_DURATION_MAX_MS, ms);
    if (e == UNITS_OK) return 0;
    return cli_usage_error(cmd,
                           "bad value '%s' for --%s: expected a duration%s (e.g. 1.5, 500ms, "
                           "2s, 1m): %s",
                           val, opt, min_ms ? " > 0" : "", units_strerror(e));
}

/* Parses a count for `weft CMD --OPT`; see cli.h. Returns 0, or 2 after the error line. */
int cli_arg_count(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                  uint64_t *out)
{
    int e = units_count(val, min, max, out);
    if (e == UNITS_OK) return 0;
    return cli_usage_error(
        cmd, "bad value '%s' for --%s: expected a whole number from %llu to %llu: %s", val, opt,
        (unsigned long long)min, (unsigned long long)max, units_strerror(e));
}
