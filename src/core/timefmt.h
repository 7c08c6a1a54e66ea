/* timefmt.h - RFC 3339 times as patto speaks them: UTC, milliseconds.
 * Times inside patto are int64 milliseconds since the Unix epoch (UTC).
 * Pure module: no I/O, no clock (the clock lives in the service layer). */
#ifndef PT_TIMEFMT_H
#define PT_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* "2026-11-29T12:00:00.000Z" plus NUL. */
#define PT_TIME_STR_MAX 32

/* Writes ms as RFC 3339 UTC with exactly three fractional digits and 'Z'.
 * out must hold PT_TIME_STR_MAX bytes. Valid for years 0001..9999. */
void pt_time_format(int64_t ms, char out[PT_TIME_STR_MAX]);

/* Parses an RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)",
 * 'T'/'t' and 'Z'/'z' in either case; fraction of 1..9 digits (truncated to
 * ms); leap second 60 is refused. The string must be consumed entirely.
 * Returns 0 and sets *ms, or -1 for anything invalid (including Feb 30). */
int pt_time_parse(const char *s, size_t len, int64_t *ms);

/* Days since epoch <-> civil date, exposed for tests and expiry arithmetic. */
int64_t pt_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
