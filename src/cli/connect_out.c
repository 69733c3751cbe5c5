/*
 * connect_out.c — how `weft connect` prints what it receives: a text message on one line
 * (with --json, a JSON message pretty-printed with two-space indentation, anything else as
 * is), a binary message raw (--binary-out) or as a length and a hex summary.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define HEX_SHOWN 16

/* Prints a text message; with json, pretty-printed when it parses as JSON. */
static void print_text(const void *data, size_t len, bool json)
{
    if (json) {
        json_t *j = json_loadb(data, len, JSON_DECODE_ANY, NULL);
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (s) {
            fputs(s, stdout);
            fputc('\n', stdout);
            free(s);
            return;
        }
    }
    fwrite(data, 1, len, stdout);
    fputc('\n', stdout);
}

/* Prints one received message on stdout (see the file comment) and flushes it. */
void connect_print_message(const void *data, size_t len, bool binary, bool binary_out, bool json)
{
    if (!binary) {
        print_text(data, len, json);
    } else if (binary_out) {
        fwrite(data, 1, len, stdout);
    } else {
        const uint8_t *p = data;
        printf("[binary, %zu bytes:", len);
        for (size_t i = 0; i < len && i < HEX_SHOWN; i++)
            printf(" %02x", p[i]);
        printf("%s]\n", len > HEX_SHOWN ? " ..." : "");
    }
    fflush(stdout);
}
