"""Benchmark: parsing alone on the shared real feeds, digest against feedparser.

    python bench/parse.py [--rounds 5] [--dir /work/shared/data/real-feeds]

Parses each real feed's bytes (no network) with `digest.collect.parse.parse_feed`
(which also cleans titles and summaries and reads dates) and with
`feedparser.parse`, in this process, and prints milliseconds per pass, the ratio,
and how many entries each gets right against the reference outputs shipped with
the feeds (NAME.json / NAME.expected.json: link and date of every entry).
If `fastfeedparser` happens to be installed it is measured too (it is not a
dependency: see the README for why digest keeps its own parser).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from collect import _feed_files, _find_feeds_dir


def _reference(directory: Path, name: str) -> list[tuple[str, datetime | None]]:
    stem = Path(name).stem
    expected = directory / f"{stem}.expected.json"
    path = expected if expected.exists() else directory / f"{stem}.json"
    entries = json.loads(path.read_text())["entries"]
    stamps = [e.get("published") or e.get("updated") for e in entries]
    return [
        (e["link"], datetime.fromisoformat(s) if s else None)
        for e, s in zip(entries, stamps, strict=True)
    ]


def _ours(data: bytes) -> list[tuple[str, datetime | None]]:
    from digest.collect.parse import parse_feed

    return [(e.url, e.published) for e in parse_feed(data, "https://example.net/", 300).entries]


def _stamp(entry: dict) -> datetime | None:
    value = entry.get("published") or entry.get("updated")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime(*parsed[:6]).astimezone() if parsed else None


def _feedparser(data: bytes) -> list[tuple[str, datetime | None]]:
    import feedparser

    return [(e.get("link", ""), None) for e in feedparser.parse(data).entries]


def _fastfeedparser(data: bytes) -> list[tuple[str, datetime | None]]:
    import fastfeedparser

    return [(e.get("link", ""), _stamp(e)) for e in fastfeedparser.parse(data).entries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    directory = args.dir or _find_feeds_dir()
    files = _feed_files(directory)
    reference = {name: _reference(directory, name) for name in files}
    total = sum(len(r) for r in reference.values())
    contenders: dict[str, Callable[[bytes], list]] = {
        "digest parse_feed": _ours,
        "feedparser": _feedparser,
    }
    if importlib.util.find_spec("fastfeedparser"):
        contenders["fastfeedparser"] = _fastfeedparser
    print(f"{len(files)} real feeds, {sum(map(len, files.values())) / 1e6:.1f} MB, {total} entries")
    timings = {}
    for label, parse in contenders.items():
        links = dates = 0
        for name, data in files.items():
            try:
                got = parse(data)
            except Exception:  # a parser refusing a feed scores nothing for it
                got = []
            for (link, when), (want_link, want_when) in zip(got, reference[name], strict=False):
                links += link == want_link
                dates += when is not None and when == want_when
        began = time.perf_counter()
        for _ in range(args.rounds):
            for data in files.values():
                with contextlib.suppress(Exception):
                    parse(data)
        timings[label] = (time.perf_counter() - began) / args.rounds
        date_note = "" if label == "feedparser" else f", dates {dates}/{total}"
        print(
            f"{label:20} {timings[label] * 1000:8.1f} ms per pass  links {links}/{total}{date_note}"
        )
    base = timings["feedparser"]
    for label, seconds in timings.items():
        if label != "feedparser":
            print(f"ratio {label}/feedparser (speed): {base / seconds:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
