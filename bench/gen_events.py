#!/usr/bin/env python3
"""Writes the import benchmark's input: SUBJECTS subjects x 3 purposes as
JSON Lines, one POST /v1/consents body per line (identifier
userN@example.com, grant of processing, marketing and profiling with the
notice privacy/1, collected via import, occurred_at within the last year).

usage: gen_events.py SUBJECTS OUT.jsonl"""
import random
import sys
import time

DAY_MS = 86400 * 1000


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n = int(sys.argv[1])
    if not 1 <= n <= 100_000_000:
        sys.exit("gen_events.py: SUBJECTS must be 1..100000000")
    rnd = random.Random(20261129)
    now_ms = int(time.time() * 1000)
    year_ms = 365 * DAY_MS
    # times are built from two tables (dates of the last 367 days, times of
    # day to the second): far faster than strftime per event
    first_day = (now_ms - year_ms) // DAY_MS - 1
    dates = [time.strftime("%Y-%m-%dT", time.gmtime((first_day + d) * 86400))
             for d in range(368)]
    tods = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}." for s in range(86400)]
    head = '{"identifier":{"type":"email","value":"user'
    mid = '@example.com"},"purpose":"'
    tail = ('","action":"grant","notice":{"notice":"privacy","version":"1"},'
            '"collected_via":"import","occurred_at":"')
    purposes = ("processing", "marketing", "profiling")
    randrange = rnd.randrange
    with open(sys.argv[2], "w", buffering=1 << 20) as f:
        out = []
        for i in range(n):
            for p in purposes:
                t = now_ms - 1 - randrange(year_ms)
                day, ms = divmod(t, DAY_MS)
                out.append(f'{head}{i}{mid}{p}{tail}{dates[day - first_day]}'
                           f'{tods[ms // 1000]}{ms % 1000:03d}Z"}}\n')
            if len(out) >= 30000:
                f.write("".join(out))
                out.clear()
        f.write("".join(out))


if __name__ == "__main__":
    main()
