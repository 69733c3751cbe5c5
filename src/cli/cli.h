/*
 * cli.h — the subcommands of the `weft` program. Each returns the process exit status:
 * 0 success, 1 runtime failure, 2 bad usage.
 */
#ifndef WEFT_CLI_H
#define WEFT_CLI_H

int cmd_serve(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* A usage error: one line on stderr, "weft CMD: MESSAGE (see weft CMD --help)" (cmd NULL:
 * the top-level command). Returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
