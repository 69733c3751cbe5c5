/*
 * hub.h — the real-time server application behind `weft serve`, built only on weft.h.
 *
 * A hub owns one weft server and its routes:
 *   /hub          the JSON protocol (rooms, history, presence; see proto.c and the README)
 *   /ws/<room>    raw rooms (/ws = "lobby"), /echo
 *   GET /healthz, /readyz, /metrics
 *   GET /         the web page: static files of the web root (web.c), chat + stats
 * with Origin checks, JWT auth, connection and rate limits, metrics and structured logs.
 *
 * Configuration (struct hub_config) comes from flags, WEFT_* environment variables and a
 * key = value file; config.c holds the table of every option that all three (and --help and
 * --print-config) are generated from.
 */
#ifndef WEFT_HUB_H
#define WEFT_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weft.h"

/* Log output format. */
enum hub_log_format { HUB_LOG_JSON = 0, HUB_LOG_TEXT };

#define HUB_MAX_ORIGINS 32

/* The effective configuration. Strings are owned by the config (hub_config_free). */
struct hub_config {
    /* listening */
    char *host;
    uint16_t port;
    char *unix_path;
    bool reuse_port;
    char *tls_cert_file; /* --tls-cert: PEM certificate + chain (wss://); NULL = plain */
    char *tls_key_file;  /* --tls-key: its PEM private key */
    /* library limits */
    uint64_t max_message;
    uint64_t max_backpressure;
    uint64_t memory_budget; /* process-wide (weft_memory_set_budget), 0 = none */
    int slow_policy;        /* enum weft_slow_policy */
    uint32_t idle_timeout_ms, ping_interval_ms, handshake_timeout_ms, shutdown_ms;
    /* permessage-deflate tuning (--deflate-*; the switch is `deflate` below) */
    bool deflate_context_takeover;
    uint32_t deflate_window_bits; /* 9..15, both directions */
    uint32_t deflate_mem_level;   /* zlib memLevel 1..9 */
    uint32_t deflate_level;       /* zlib compression level 0..9 of what we send */
    uint32_t deflate_threshold;   /* messages shorter than this go uncompressed */
    /* logs */
    int log_level; /* enum weft_log_level */
    enum hub_log_format log_format;
    /* security */
    char *origins[HUB_MAX_ORIGINS]; /* --allow-origin patterns (see hub.c) */
    size_t norigins;
    char *auth_secret;               /* HS256 secret; NULL = no auth */
    char *auth_secret_file;          /* read at start (first line) when auth_secret is not set */
    bool auth_allow_no_exp;          /* accept tokens without exp (default: 401) */
    char *revoked_file;              /* revoked jti list, one per line, reloaded on change */
    uint32_t max_connections;        /* 0 = unlimited */
    uint32_t max_connections_per_ip; /* 0 = unlimited */
    uint32_t retry_after_s;          /* Retry-After on 503 */
    double rate;                     /* messages per second per connection, 0 = unlimited */
    double burst;                    /* bucket size, 0 = 2 * rate (at least 1) */
    uint32_t max_rooms;              /* rooms per /hub connection */
    double handshake_rate;  /* WebSocket upgrades per second per client IP, 0 = unlimited */
    double handshake_burst; /* its bucket size, 0 = 2 * handshake_rate (at least 1) */
    /* rooms */
    uint32_t history_size;        /* messages kept per room */
    uint32_t history_age_ms;      /* max age of kept messages, 0 = forever */
    uint64_t history_max_message; /* larger deliveries are delivered but not kept */
    uint64_t history_memory;      /* bytes kept in all histories of the process */
    uint32_t max_total_rooms;     /* /hub and raw rooms of the process, 0 = unlimited */
    /* the web page (web.c) and compression */
    char *web_root; /* --web-root: static files for GET /; NULL = the shipped web/ */
    bool deflate;   /* --deflate: permessage-deflate on (the default) or off */
    /* scale-out */
    uint32_t workers; /* worker threads (--workers), default the number of cores */
    char *io_backend; /* --io-backend epoll|uring; NULL = the library's default */
    char *redis;      /* --redis redis://host[:port][/db]: multi-node; NULL = in-process */
    /* the config file it was loaded from (informational) */
    char *config_file;
};

/* Sets every field to its default. */
void hub_config_defaults(struct hub_config *cfg);
/* Deep copy of src into dst. Returns 0 or -1 (out of memory; dst then holds what was
 * copied and must be freed). */
int hub_config_copy(struct hub_config *dst, const struct hub_config *src);
/* Frees the strings of cfg. */
void hub_config_free(struct hub_config *cfg);

/* Where a value comes from, for error messages and precedence. */
enum hub_source { HUB_SRC_DEFAULT = 0, HUB_SRC_FILE, HUB_SRC_ENV, HUB_SRC_FLAG };

/*
 * Sets option `key` (the long flag name without "--", e.g. "max-connections"; '_' is
 * accepted for '-') from text. Returns 0, 1 when the key is unknown, or -1 when the value is
 * invalid (err receives a message naming the expected form).
 */
int hub_config_set(struct hub_config *cfg, const char *key, const char *value, char *err,
                   size_t errcap);

/* Reads a key = value file (inih). Returns 0, or -1 with err filled (file missing, syntax
 * error with its line, unknown key, bad value). */
int hub_config_load_file(struct hub_config *cfg, const char *path, char *err, size_t errcap);

/* Applies every WEFT_<KEY> environment variable (KEY = option name upper-cased, '-' → '_').
 * Returns 0 or -1 with err filled. */
int hub_config_load_env(struct hub_config *cfg, char *err, size_t errcap);

/* Checks consistency and loads the secret file. Returns 0 or -1 with err filled. */
int hub_config_finish(struct hub_config *cfg, char *err, size_t errcap);

/* Writes the effective configuration as key = value lines (loadable with --config); the
 * secret is shown as "(set)". */
void hub_config_print(const struct hub_config *cfg, FILE *out);

/* Writes the option list of --help (one entry per option, its default in brackets, its
 * environment variable). */
void hub_config_usage(FILE *out);

/* getopt_long table of every option (NULL-terminated, static) and the id of an entry. The
 * CLI adds its own flags (--config, --print-config, --help) to it. */
struct option;
const struct option *hub_config_options(size_t *n);
/* The option name of the getopt val returned for a table entry (NULL if not one). */
const char *hub_config_option_name(int val);

/* ------------------------------------------------------------------ running */

struct hub;

/* Creates the hub on loop: listens, registers the routes, loads the revocation list. On
 * failure returns NULL and writes why into err. cfg is copied (strings too). The log stream
 * is `log` (stderr in the CLI). */
struct hub *hub_new(struct weft_loop *loop, const struct hub_config *cfg, FILE *log, char *err,
                    size_t errcap);

/* The bound TCP port (for --port 0). */
uint16_t hub_port(const struct hub *h);

/* Logs the "listening on ADDR:PORT" line (always printed, whatever the level). */
void hub_log_listening(struct hub *h);

/* Graceful shutdown: /readyz turns 503 "draining", every connection is closed with `code`
 * (1001, or 1012 for a restart) and done(arg) runs once they are gone or after the shutdown
 * timeout. */
void hub_shutdown(struct hub *h, uint16_t code, void (*done)(void *arg), void *arg);

/* Logs the final counters and frees the hub (connections are dropped). Run the loop for a
 * few more iterations (some 50 ms) afterwards so deferred frees complete. */
void hub_free(struct hub *h);

/* Runs a hub with cfg until SIGINT/SIGTERM: the whole of `weft serve` after configuration.
 * Returns the exit status (0 after a graceful shutdown, 1 on failure). */
int hub_run(const struct hub_config *cfg);

#endif
