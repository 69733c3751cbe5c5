/*
 * cli.h — the subcommands of the `weft` program. Each returns the process exit status:
 * 0 success, 1 runtime failure, 2 bad usage.
 */
#ifndef WEFT_CLI_H
#define WEFT_CLI_H

int cmd_serve(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
