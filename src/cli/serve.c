/*
 * serve.c — `weft serve`: the command line over src/hub. It turns flags, WEFT_* environment
 * variables and an optional config file (in that order of precedence) into a hub
 * configuration and runs the hub (hub_run). Every option lives in one table in
 * src/hub/config.c, from which the flags, the variables, the file keys, --help and
 * --print-config are generated.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hub/hub.h"

/* Options of the command itself (not configuration). */
enum { OPT_CONFIG = 256, OPT_PRINT_CONFIG, OPT_HELP };

/* Prints the usage: routes, every option with its default and variable, the command's own
 * flags and the precedence rules. */
static void usage(FILE *out)
{
    fputs("usage: weft serve [options]\n"
          "\n"
          "Runs the real-time WebSocket server.\n"
          "  /hub          JSON protocol: join, leave, publish, presence, history, ping, auth\n"
          "  /ws/<room>    join <room>: each message goes to every other member (/ws = lobby)\n"
          "  /echo         echoes every message (accepts the first subprotocol offered)\n"
          "  /healthz      GET: 200 \"ok\" while the process runs\n"
          "  /readyz       GET: 200 only if a WebSocket handshake with itself succeeds now\n"
          "  /metrics      GET: Prometheus text format 0.0.4\n"
          "\n"
          "options (default in brackets, environment variable in parentheses):\n",
          out);
    hub_config_usage(out);
    fputs("  --config FILE                a key = value file with the same option names\n"
          "                               (\"port = 9000\"; '#' or ';' comments) (WEFT_CONFIG)\n"
          "  --print-config               print the effective configuration and exit\n"
          "  -h, --help                   show this help\n"
          "\n"
          "Precedence: flags, then WEFT_* variables, then the config file, then defaults.\n"
          "BYTES: 512, 64k, 1m or 1MiB (k, m, g: powers of 1024; KB = KiB). S: seconds,\n"
          "fractional (0.5) or with a unit (500ms, 2s, 1m, 1h); a non-zero duration below\n"
          "1 ms is 1 ms. weft connect and weft bench read the same forms.\n"
          "Logs go to stderr as JSON lines (or text with --log-format text); the line\n"
          "\"listening on ADDR:PORT\" is always logged once the server is listening.\n"
          "Exit status: 0 after a graceful shutdown, 1 on a runtime failure, 2 on bad usage.\n",
          out);
}

/* Reports a usage error (one line with a hint to --help) and returns 2. */
#define usage_error(...) cli_usage_error("serve", __VA_ARGS__)

/* A flag given on the command line, applied after the file and the environment. */
struct flag {
    const char *name;
    const char *value;
};

/* `weft serve`: see usage(). Returns the exit status. */
int cmd_serve(int argc, char **argv)
{
    size_t nopts;
    const struct option *hub_opts = hub_config_options(&nopts);
    struct option *longopts = calloc(nopts + 4, sizeof *longopts);
    struct flag *flags = calloc((size_t)argc + 1, sizeof *flags);
    if (!longopts || !flags) {
        free(longopts);
        free(flags);
        fprintf(stderr, "weft serve: out of memory\n");
        return 1;
    }
    memcpy(longopts, hub_opts, nopts * sizeof *longopts);
    longopts[nopts] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    longopts[nopts + 1] = (struct option){"print-config", no_argument, NULL, OPT_PRINT_CONFIG};
    longopts[nopts + 2] = (struct option){"help", no_argument, NULL, OPT_HELP};

    struct hub_config cfg;
    hub_config_defaults(&cfg);
    const char *config_file = getenv("WEFT_CONFIG");
    bool print_config = false;
    size_t nflags = 0;
    int rc = -1;
    char err[512];

    optind = 1;
    opterr = 0;
    int opt;
    while (rc < 0 && (opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        const char *name = hub_config_option_name(opt);
        if (name) {
            /* Validate now (against a scratch config) so a bad flag fails before any file. */
            struct hub_config scratch;
            hub_config_defaults(&scratch);
            const char *value = optarg ? optarg : "true"; /* a flag without a value */
            int r = hub_config_set(&scratch, name, value, err, sizeof err);
            hub_config_free(&scratch);
            if (r != 0)
                rc = usage_error("bad value '%s' for --%s: %s", value, name, err);
            else
                flags[nflags++] = (struct flag){name, value};
            continue;
        }
        switch (opt) {
        case OPT_CONFIG:
            config_file = optarg;
            break;
        case OPT_PRINT_CONFIG:
            print_config = true;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            rc = 0;
            break;
        case ':':
            rc = usage_error("option '%s' needs a value", argv[optind - 1]);
            break;
        default:
            if (optopt > 0 && optopt < 256) {
                char o[3] = {'-', (char)optopt, 0};
                rc = usage_error("unknown option '%s'", o);
            } else {
                rc = usage_error("unknown option '%s'", argv[optind - 1]);
            }
        }
    }
    if (rc < 0 && optind < argc) rc = usage_error("unexpected argument '%s'", argv[optind]);

    if (rc < 0 && config_file && *config_file &&
        hub_config_load_file(&cfg, config_file, err, sizeof err) < 0) {
        fprintf(stderr, "weft serve: config file: %s\n", err);
        rc = 2;
    }
    if (rc < 0 && hub_config_load_env(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "weft serve: environment: %s\n", err);
        rc = 2;
    }
    bool origins_from_flags = false;
    for (size_t i = 0; rc < 0 && i < nflags; i++) {
        if (!strcmp(flags[i].name, "allow-origin") && !origins_from_flags) {
            /* Flags replace the origins of the file and the environment. */
            for (size_t k = 0; k < cfg.norigins; k++)
                free(cfg.origins[k]);
            cfg.norigins = 0;
            origins_from_flags = true;
        }
        hub_config_set(&cfg, flags[i].name, flags[i].value, err, sizeof err);
    }
    if (rc < 0 && hub_config_finish(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "weft serve: %s\n", err);
        rc = 2;
    }
    if (rc < 0 && print_config) {
        hub_config_print(&cfg, stdout);
        rc = 0;
    }
    if (rc < 0) rc = hub_run(&cfg);
    hub_config_free(&cfg);
    free(longopts);
    free(flags);
    return rc;
}
