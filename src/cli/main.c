/*
 * main.c — `weft`: dispatches to the serve, connect and bench subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "weft.h"

static const char usage[] =
    "usage: weft <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve    run the real-time WebSocket server (default port 8080)\n"
    "  connect  connect to a WebSocket server: stdin lines out, messages in\n"
    "  bench    load-generate against a WebSocket server (echo, room, connect, idle)\n"
    "\n"
    "  weft <command> --help   options of a command\n"
    "  weft --version          print the version\n";

/* `weft <command> ...`: runs the subcommand. Returns its exit status (2 on bad usage). */
int main(int argc, char **argv)
{
    if (argc < 2) return cli_usage_error(NULL, "missing command: serve, connect or bench");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("weft %s\n", WEFT_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "connect")) return cmd_connect(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    return cli_usage_error(NULL, "unknown command '%s'", cmd);
}
