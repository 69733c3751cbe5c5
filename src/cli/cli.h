/*
 * cli.h — the subcommands of the `weft` program. Each returns the process exit status:
 * 0 success, 1 runtime failure, 2 bad usage.
 */
#ifndef WEFT_CLI_H
#define WEFT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int cmd_serve(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* connect_out.c: prints a message received by `weft connect` (text on one line, or
 * pretty-printed JSON with json; binary raw with binary_out, else a hex summary). */
void connect_print_message(const void *data, size_t len, bool binary, bool binary_out, bool json);

/* A usage error: one line on stderr, "weft CMD: MESSAGE (see weft CMD --help)" (cmd NULL:
 * the top-level command). Returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* args.c: one option value in the grammar shared by every subcommand (src/hub/units.h).
 * Each returns 0 with *out set, or prints "weft CMD: bad value 'V' for --OPT: expected ..."
 * and returns 2. A size lies in [min, max] bytes; a duration is in ms, >= min_ms, at most
 * UNITS_DURATION_MAX_MS; a count is a plain decimal in [min, max]. */
int cli_arg_size(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                 uint64_t *out);
int cli_arg_duration(const char *cmd, const char *opt, const char *val, uint32_t min_ms,
                     uint32_t *ms);
int cli_arg_count(const char *cmd, const char *opt, const char *val, uint64_t min, uint64_t max,
                  uint64_t *out);

#endif
