"""Benchmark: importing a 10,000-row subscriber CSV with 50 bad rows.

Compares `import_csv` (validate all, then a few bulk statements in one
transaction) with a baseline that stores the good rows one
`subscribers.add` call (one transaction) at a time, on SQLite files.
The baseline runs on the first --baseline-rows rows and is compared by rate.

    python bench/subscribers_import.py [--rows 10000] [--baseline-rows 2000]
"""

from __future__ import annotations

import argparse
import csv
import io
import resource
import tempfile
import time

from digest.db import Database
from digest.models import Subscriber
from digest.subscribers import import_csv, read_csv

ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]


def make_csv(rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "name", "timezone", "delivery_hour", "format", "topics_include"])
    for i in range(rows):
        email = f"reader.{i:06d}@example.com"
        zone = ZONES[i % len(ZONES)]
        if i % 200 == 199:  # 50 bad rows in 10,000
            email, zone = (f"bad {i}", zone) if i % 400 == 199 else (email, "Mars/Olympus")
        fmt = "text" if i % 5 == 0 else "html"
        writer.writerow([email, f"Reader {i}", zone, i % 24, fmt, "storm;rail" if i % 3 else ""])
    return out.getvalue()


def timed(label: str, func) -> float:
    began = time.perf_counter()
    func()
    seconds = time.perf_counter() - began
    print(f"{label:<44} {seconds:8.3f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--baseline-rows", type=int, default=2_000)
    args = parser.parse_args()
    text = make_csv(args.rows)

    with tempfile.TemporaryDirectory() as tmp:
        bulk = Database(f"sqlite:///{tmp}/bulk.db").subscribers
        one_by_one = Database(f"sqlite:///{tmp}/baseline.db").subscribers
        plan = read_csv(io.StringIO(text))
        print(f"{args.rows} rows, {len(plan.rows)} good, {len(plan.bad)} bad")

        def import_bulk() -> None:
            import_csv(bulk, io.StringIO(text), skip_invalid=True)

        sample = plan.rows[: args.baseline_rows]

        def baseline() -> None:
            for row in sample:
                one_by_one.add(Subscriber(**row))

        ours = timed("import_csv (validate + bulk, one transaction)", import_bulk)
        again = timed("import_csv again (all unchanged)", import_bulk)
        base = timed(f"baseline: subscribers.add per row, {len(sample)} rows", baseline)
        assert sum(1 for _ in bulk.iter()) == len(plan.rows)
        assert sum(1 for _ in one_by_one.iter()) == len(sample)
        bulk.close()
        one_by_one.close()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rates = [len(plan.rows) / ours, len(plan.rows) / again, len(sample) / base]
    print(f"rows/s: import {rates[0]:,.0f}, re-import {rates[1]:,.0f}, baseline {rates[2]:,.0f}")
    print(
        f"speed-up over baseline: {rates[0] / rates[2]:.1f}x (re-import {rates[1] / rates[2]:.1f}x)"
    )
    print(f"peak RSS of the whole process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
