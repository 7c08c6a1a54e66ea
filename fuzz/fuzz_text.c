/* libFuzzer target: every small text parser fed from outside: RFC 3339
 * times, prefixed ids, base32, identifier normalisation, the keyring file,
 * the JSON pre-scan and UTF-8 validation. Round trips must hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/jsonscan.h"
#include "core/keyring.h"
#include "core/normalize.h"
#include "core/timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int64_t ms;
    if (pt_time_parse(s, size, &ms) == 0) {
        char out[PT_TIME_STR_MAX];
        int64_t back;
        pt_time_format(ms, out);
        if (pt_time_parse(out, strlen(out), &back) != 0 || back != ms) abort();
    }
    uint8_t id[PT_ID_BYTES];
    if (pt_id_parse("sub", s, size, id) == 0) {
        char out[PT_ID_STR_MAX];
        uint8_t back[PT_ID_BYTES];
        pt_id_format("sub", id, out);
        if (pt_id_parse("sub", out, strlen(out), back) != 0 || memcmp(id, back, sizeof id))
            abort();
    }
    uint8_t bin[256];
    pt_b32_decode(s, size, bin, sizeof bin);
    char norm[PT_IDENT_MAX];
    for (int t = 0; t < PT_IDENT__COUNT; t++)
        if (pt_ident_normalize((pt_ident_type)t, s, size, norm) == 0) {
            char again[PT_IDENT_MAX];
            /* normalising is idempotent */
            if (pt_ident_normalize((pt_ident_type)t, norm, strlen(norm), again) != 0 ||
                strcmp(norm, again) != 0)
                abort();
        }
    pt_keyring kr;
    pt_err err;
    pt_keyring_parse(&kr, s, size, &err);
    pt_jsonscan(s, size, PT_JSON_MAX_DEPTH, NULL);
    pt_utf8_valid(s, size);
    return 0;
}
