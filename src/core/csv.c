#include "csv.h"

/*
 * Two things the header leaves implicit:
 *  - A last field that runs to the end of the input without a quote or a
 *    newline has no byte of its own to hold its NUL, so the reader writes
 *    buf[len]: the buffer must have one byte of room past len (a loader that
 *    NUL-terminates what it reads already has it).
 *  - The struct keeps no count of newlines inside quoted fields, so `line`
 *    is kept as the line on which the last returned record ends; the next
 *    record then starts on line + 1 (plus any blank lines). For one-line
 *    records, the usual case, start and end are the same. A malformed
 *    record reports the line it starts on instead, and ends the input:
 *    after an unbalanced quote there is no reliable place to resume.
 */

void pt_csv_init(pt_csv *c, char *buf, size_t len)
{
    c->buf = buf;
    c->len = len;
    c->pos = 0;
    c->line = 0;
}

static int csv_fail(pt_csv *c, size_t start_line)
{
    c->pos = c->len;
    c->line = start_line;
    return -1;
}

int pt_csv_next(pt_csv *c, char *fields[PT_CSV_MAX_FIELDS], size_t lens[PT_CSV_MAX_FIELDS])
{
    char *b = c->buf;
    size_t len = c->len;
    size_t i = c->pos;
    size_t line = c->pos == 0 ? 1 : c->line + 1;

    /* Skip blank lines; they carry no record. */
    for (;;) {
        if (i < len && b[i] == '\n') {
            i++;
            line++;
        } else if (i + 1 < len && b[i] == '\r' && b[i + 1] == '\n') {
            i += 2;
            line++;
        } else {
            break;
        }
    }
    if (i >= len) {
        c->pos = len;
        return 0;
    }

    size_t start_line = line;
    int nf = 0;
    for (;;) {
        if (nf == PT_CSV_MAX_FIELDS) return csv_fail(c, start_line);
        /* The field is unescaped in place: w never passes i, because a
         * quoted field loses at least its opening quote. */
        size_t w = i;
        fields[nf] = b + w;

        if (i < len && b[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) return csv_fail(c, start_line);
                if (b[i] == '"') {
                    if (i + 1 < len && b[i + 1] == '"') {
                        b[w++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (b[i] == '\n') line++;
                b[w++] = b[i++];
            }
            /* Only a separator or the end of the record may follow. */
            if (i < len && b[i] != ',' && b[i] != '\n' &&
                !(b[i] == '\r' && i + 1 < len && b[i + 1] == '\n'))
                return csv_fail(c, start_line);
        } else {
            /* A bare '"' or '\r' inside an unquoted field is kept as data:
             * refusing it would reject files that every spreadsheet reads. */
            while (i < len && b[i] != ',' && b[i] != '\n' &&
                   !(b[i] == '\r' && i + 1 < len && b[i + 1] == '\n'))
                i++;
            w = i;
        }
        lens[nf] = w - (size_t)(fields[nf] - b);
        nf++;

        if (i >= len) {
            b[w] = '\0'; /* may be buf[len]: see the note at the top */
            i = len;
            break;
        }
        if (b[i] == ',') {
            b[w] = '\0';
            i++;
            continue;
        }
        /* End of record: LF or CRLF. Measure before writing the NUL, which
         * may land on the very CR being looked at. */
        size_t eol = b[i] == '\r' ? 2 : 1;
        b[w] = '\0';
        i += eol;
        break;
    }

    c->pos = i;
    c->line = line;
    return nf;
}
