/*
 * fuzz_close.c — libFuzzer target for close payload parsing and building.
 *
 * Checks the parser against the rules directly (code range, UTF-8 of the reason) and that a
 * payload built from a valid parse parses back to the same code and reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 125)
        size = 125;
    uint16_t code;
    const char *reason;
    size_t rlen;
    uint16_t err = weft_close_parse(data, size, &code, &reason, &rlen);
    if (size == 0) {
        if (err || code != 1005)
            abort();
        return 0;
    }
    if (size == 1) {
        if (err != 1002)
            abort();
        return 0;
    }
    unsigned raw = (unsigned)data[0] << 8 | data[1];
    bool code_ok = weft_close_code_valid(raw);
    bool text_ok = weft_utf8_valid(data + 2, size - 2);
    uint16_t want = !code_ok ? 1002 : !text_ok ? 1007 : 0;
    if (err != want)
        abort();
    if (err)
        return 0;
    if (code != raw || rlen != size - 2 || (const uint8_t *)reason != data + 2)
        abort();
    uint8_t out[125];
    size_t n = weft_close_payload(out, code, reason, rlen);
    if (n != size || memcmp(out, data, size) != 0)
        abort();
    return 0;
}
