#include "timefmt.h"

#define MS_PER_DAY INT64_C(86400000)

/* 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the range in which
 * a four-digit year can be written, so everything we accept we can also
 * print back unchanged. */
#define MS_MIN (INT64_C(-719162) * MS_PER_DAY)
#define MS_MAX (INT64_C(2932897) * MS_PER_DAY - 1)

/* Floor division: C truncates toward zero, which would put the instants just
 * before the epoch on the wrong day. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

int64_t pt_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Count years from March so that the leap day is the last day of the
     * "year"; then every month length except February's is a fixed pattern
     * and a 400-year era is exactly 146097 days. */
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                        /* [0, 399] */
    int64_t mp = m > 2 ? (int64_t)m - 3 : (int64_t)m + 9; /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + (int64_t)d - 1;  /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* [0, 146096] */
    /* 719468 is the day number of 1970-01-01 counted from 0000-03-01. */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static char *put_digits(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

void pt_time_format(int64_t ms, char out[PT_TIME_STR_MAX])
{
    /* Out-of-range instants are clamped rather than printed with a
     * five-digit or negative year that no RFC 3339 reader would take. */
    if (ms < MS_MIN) ms = MS_MIN;
    if (ms > MS_MAX) ms = MS_MAX;

    int64_t days = floor_div(ms, MS_PER_DAY);
    int64_t rem = ms - days * MS_PER_DAY;
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);

    char *p = out;
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, mo, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, rem / 3600000, 2);
    *p++ = ':';
    p = put_digits(p, rem / 60000 % 60, 2);
    *p++ = ':';
    p = put_digits(p, rem / 1000 % 60, 2);
    *p++ = '.';
    p = put_digits(p, rem % 1000, 3);
    *p++ = 'Z';
    *p = '\0';
}

/* Reads exactly n ASCII digits; isdigit() would depend on the locale. */
static int get_digits(const char *s, int n, int *v)
{
    int acc = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        acc = acc * 10 + (s[i] - '0');
    }
    *v = acc;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const unsigned char DAYS[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : DAYS[m - 1];
}

int pt_time_parse(const char *s, size_t len, int64_t *ms)
{
    if (!s || !ms) return -1;
    /* "YYYY-MM-DDTHH:MM:SS" is 19 characters and at least 'Z' must follow. */
    if (len < 20) return -1;

    int y, mo, d, h, mi, sec;
    if (get_digits(s, 4, &y) || s[4] != '-' || get_digits(s + 5, 2, &mo) || s[7] != '-' ||
        get_digits(s + 8, 2, &d))
        return -1;
    if (s[10] != 'T' && s[10] != 't') return -1;
    if (get_digits(s + 11, 2, &h) || s[13] != ':' || get_digits(s + 14, 2, &mi) ||
        s[16] != ':' || get_digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return -1;
    /* No leap seconds: a 60 cannot be mapped onto a millisecond count
     * without inventing a rule, and patto never produces one. */
    if (h > 23 || mi > 59 || sec > 59) return -1;

    size_t i = 19;
    int64_t frac = 0;
    if (s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && i - start < 10 && s[i] >= '0' && s[i] <= '9') {
            /* Only the first three digits matter; the rest is truncated. */
            if (i - start < 3) frac = frac * 10 + (s[i] - '0');
            i++;
        }
        size_t n = i - start;
        if (n < 1 || n > 9) return -1;
        for (; n < 3; n++) frac *= 10;
    }
    if (i >= len) return -1;

    int64_t offset_min = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        if (len - i < 6) return -1;
        if (get_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || get_digits(s + i + 4, 2, &om))
            return -1;
        if (oh > 23 || om > 59) return -1;
        offset_min = (int64_t)oh * 60 + om;
        if (s[i] == '-') offset_min = -offset_min;
        i += 6;
    } else {
        return -1;
    }
    if (i != len) return -1;

    int64_t t = pt_days_from_civil(y, (unsigned)mo, (unsigned)d) * MS_PER_DAY +
                ((int64_t)h * 3600 + (int64_t)mi * 60 + sec) * 1000 + frac;
    /* A local time ahead of UTC (+hh:mm) is a smaller UTC instant. */
    t -= offset_min * 60000;
    if (t < MS_MIN || t > MS_MAX) return -1;
    *ms = t;
    return 0;
}
