/*
 * fuzz_config.c — libFuzzer target for the configuration of `weft serve` (src/hub/config.c):
 * the key = value file (hub_config_load_file, inih) and the WEFT_* environment
 * (hub_config_load_env), then hub_config_finish (with --redis URL parsing), copy and free.
 *
 * Byte 0, bit 0 picks the source:
 *   file: the rest is written to a scratch file and loaded;
 *   environment: the rest is lines "<k><value>": byte k picks an option (its index in the
 *   option table, modulo its size) whose WEFT_<NAME> variable is set to the value; every
 *   variable is unset again afterwards.
 * Properties checked: a refusal fills the error text; an accepted configuration prints
 * (--print-config) as a file that loads back to the same printed configuration (when its
 * values can be written in the file format at all, see representable); finish
 * either accepts or explains; copies free cleanly (LeakSanitizer).
 */
#include <ctype.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"
#include "hub/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path_in[64], path_out[64];

/* The --print-config text of cfg without its first line (which names the file), malloc'd. */
static char *printed(const struct hub_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) abort();
    hub_config_print(cfg, f);
    fclose(f);
    char *nl = strchr(buf, '\n');
    if (!nl) abort();
    memmove(buf, nl + 1, strlen(nl + 1) + 1);
    return buf;
}

/* True if every value of the printed configuration survives the file format: inih trims
 * blanks around a value and cuts it at an inline comment (" ;"), and a file line holds at
 * most 198 bytes, so a value set from the environment with those cannot be written back. */
static bool representable(const char *text)
{
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *eq = memchr(line, '=', n);
        if (n > 198) return false; /* longer than a line of the file may be */
        if (eq && (size_t)(eq - line) + 2 <= n) {
            const char *v = eq + 2, *end = line + n;
            if (v < end && (isspace((unsigned char)v[0]) || isspace((unsigned char)end[-1])))
                return false;
            for (const char *c = v; c < end; c++)
                if (*c == ';' && isspace((unsigned char)c[-1])) return false;
        }
        line += n + (nl ? 1 : 0);
    }
    return true;
}

/* Writes text[0..len) to path. */
static void write_file(const char *path, const void *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(text, 1, len, f) != len) || fclose(f) != 0) abort();
}

/* The name of environment variable of option name: WEFT_ + upper case, '-' as '_'. */
static void env_name(const char *name, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "WEFT_");
    for (; *name && n + 1 < cap; name++)
        out[n++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    out[n] = '\0';
}

/* Loads the environment lines of text[0..len) into cfg. Returns what hub_config_load_env
 * returned. */
static int load_env(struct hub_config *cfg, const uint8_t *text, size_t len, char *err, size_t cap)
{
    size_t nopts;
    const struct option *o = hub_config_options(&nopts);
    char names[64][64];
    size_t nset = 0;
    size_t i = 0;
    while (i < len && nset < 64) {
        const uint8_t *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (end > i) {
            env_name(o[text[i] % nopts].name, names[nset], sizeof names[nset]);
            char *v = strndup((const char *)text + i + 1, end - i - 1);
            if (!v || setenv(names[nset++], v, 1) != 0) abort();
            free(v);
        }
        i = end + 1;
    }
    int r = hub_config_load_env(cfg, err, cap);
    for (size_t k = 0; k < nset; k++)
        unsetenv(names[k]);
    return r;
}

/* Removes the scratch files (at exit). */
static void remove_files(void)
{
    unlink(path_in);
    unlink(path_out);
}

/* libFuzzer entry point: see the comment at the top. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path_in[0]) {
        snprintf(path_in, sizeof path_in, "/tmp/weft-fuzz-config-%d.in", (int)getpid());
        snprintf(path_out, sizeof path_out, "/tmp/weft-fuzz-config-%d.out", (int)getpid());
        atexit(remove_files);
    }
    if (size < 1) return 0;
    bool env = data[0] & 1;
    struct hub_config cfg;
    hub_config_defaults(&cfg);
    char err[512] = "";
    int r;
    if (env) {
        r = load_env(&cfg, data + 1, size - 1, err, sizeof err);
    } else {
        write_file(path_in, data + 1, size - 1);
        r = hub_config_load_file(&cfg, path_in, err, sizeof err);
    }
    if (r != 0 && r != -1) abort();
    if (r < 0 && !err[0]) abort();
    if (r == 0) {
        /* --print-config output loads back to the same configuration. */
        char *one = printed(&cfg);
        if (!representable(one)) {
            free(one);
            hub_config_free(&cfg);
            return 0;
        }
        write_file(path_out, one, strlen(one));
        struct hub_config back;
        hub_config_defaults(&back);
        char err2[512] = "";
        if (hub_config_load_file(&back, path_out, err2, sizeof err2) != 0) abort();
        char *two = printed(&back);
        if (strcmp(one, two) != 0) abort();
        free(one);
        free(two);
        hub_config_free(&back);

        struct hub_config copy;
        if (hub_config_copy(&copy, &cfg) != 0) abort();
        free(copy.auth_secret_file); /* finish would read it: no arbitrary paths here */
        copy.auth_secret_file = NULL;
        err[0] = '\0';
        int f = hub_config_finish(&copy, err, sizeof err);
        if ((f != 0 && f != -1) || (f < 0 && !err[0])) abort();
        hub_config_free(&copy);
    }
    hub_config_free(&cfg);
    return 0;
}
