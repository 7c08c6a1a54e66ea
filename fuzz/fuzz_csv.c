/* libFuzzer target: the CSV record reader used by `patto import`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    pt_csv c;
    char *f[PT_CSV_MAX_FIELDS];
    size_t l[PT_CSV_MAX_FIELDS];
    pt_csv_init(&c, buf, size);
    int n;
    while ((n = pt_csv_next(&c, f, l)) > 0)
        for (int i = 0; i < n; i++)
            if (strlen(f[i]) > l[i]) abort(); /* lengths must be honest */
    free(buf);
    return 0;
}
