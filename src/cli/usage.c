/*
 * usage.c — the one form of a usage error shared by every subcommand: one line on stderr,
 * "weft CMD: MESSAGE (see weft CMD --help)", and exit status 2. The whole usage is printed
 * only when asked for (--help), never after a mistake.
 */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"

/* Prints "weft <cmd>: <message> (see weft <cmd> --help)" on stderr (cmd NULL: the top-level
 * "weft: ... (see weft --help)"). Returns 2, the exit status of bad usage. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "weft%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see weft%s%s --help)\n", cmd ? " " : "", cmd ? cmd : "");
    return 2;
}
