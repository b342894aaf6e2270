"""Benchmark: a fresh process's first grouping of 20,000 headlines, as a cron run pays it.

`bench/group.py` times grouping inside a process that has grouped before: its
imports, the embedding model and lemminflect's word list are loaded by then. A
daily `digest run` from cron pays all of them. Each run here is a new process
that builds the headlines (not timed), then times `group()` from the import of
`digest.group` on, then, as the baseline in the same process, scikit-learn's
TF-IDF vectoriser over the same texts. Medians of several runs, since the
machine is shared.

    python bench/cold_group.py [--shared ../shared/data] [--runs 5] [--size 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SHARED = BENCH.parent.parent / "shared" / "data"

CHILD = """
import json, sys, time
sys.path.insert(0, {bench!r})
from pathlib import Path
from days import load_uci, variants
articles = [a for a, _ in variants(load_uci(Path({uci!r})), {size})]
began = time.perf_counter()
from digest.group import group
themes = group(articles)
first = time.perf_counter() - began
from sklearn.feature_extraction.text import TfidfVectorizer
from digest.group.text import terms
began = time.perf_counter()
TfidfVectorizer(analyzer=terms, sublinear_tf=True).fit_transform(
    [f"{{a.title}} {{a.summary}}" for a in articles]
)
print(json.dumps({{"first": first, "floor": time.perf_counter() - began,
                  "themes": sum(not t.catch_all for t in themes)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=20_000)
    args = parser.parse_args()
    uci = args.shared / "uci-news-stories-dev.csv"
    if not uci.is_file():
        sys.exit(f"bench/cold_group.py: no shared data at {args.shared}; pass --shared PATH")
    code = CHILD.format(bench=str(BENCH), uci=str(uci), size=args.size)
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        runs.append(json.loads(out.stdout))
    first = statistics.median(r["first"] for r in runs)
    floor = statistics.median(r["floor"] for r in runs)
    print(f"{args.size} headlines, {runs[0]['themes']} themes, {args.runs} fresh processes:")
    print(f"  first group() call, imports included: {first:5.2f} s median (target < 5 s)")
    print("    each run: " + ", ".join(f"{r['first']:.2f}" for r in runs) + " s")
    print(f"  vectorising alone, same processes:    {floor:5.2f} s median")
    print(f"  ratio first call / vectorising:       {first / floor:5.1f}x")


if __name__ == "__main__":
    main()
