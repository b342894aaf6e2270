"""Benchmark: `digest feeds check` on real feeds served on loopback, against feedparser.

    python bench/collect.py [--copies 15] [--dir /work/shared/data/real-feeds]

Serves the shared real feeds (blogs, a hardware-news site, software projects, a
Q&A site, JSON Feed, UTF-16 and malformed samples), each repeated under
`--copies` paths so there are at least 200 feeds, from a ThreadingHTTPServer in
its own process, then measures in this run:

- baseline: `feedparser.parse(url)` one feed after another (fetching and
  parsing), as simple feed-to-mail tools do, in this process;
- digest: the real `digest feeds check` command in a child process on a fresh
  SQLite database, end to end (start-up, fetching, parsing, database writes).

Then reads the entries `digest` stored for each feed and checks that every entry
feedparser found (by link) is among them. Prints wall time, entries per second,
CPU time (digest's counts its parsing processes), the child's peak memory (from
its rusage) and the ratios digest/baseline. The machine may be shared: when it is
loaded, wall times stretch and the CPU ratio is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_TYPES = {".xml": "application/xml", ".json": "application/feed+json"}


def _find_feeds_dir() -> Path:
    """The shared real feeds: beside the checkout (../shared/data) or above it."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "data" / "real-feeds"
        if candidate.is_dir():
            return candidate
    raise SystemExit("real feeds not found: pass --dir /path/to/shared/data/real-feeds")


def _feed_files(directory: Path) -> dict[str, bytes]:
    """Each feed document (NAME.xml, or NAME.json when it is a feed, not expected output)."""
    files = {}
    for path in sorted(directory.iterdir()):
        is_feed_json = (directory / f"{path.stem}.expected.json").exists()
        if path.suffix == ".xml" or (path.suffix == ".json" and is_feed_json):
            files[path.name] = path.read_bytes()
    return files


def _serve(files: dict[str, bytes], ready: mp.Queue) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            body = files.get(name)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", _TYPES[Path(name).suffix])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.put(server.server_port)
    server.serve_forever()


def _cpu(who: int) -> float:
    """CPU seconds (user + system) of this process, or of its waited-for children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _baseline(urls: list[str]) -> tuple[dict[str, list[str]], float, float]:
    import feedparser

    began, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    found = {url: [e.get("link", "") for e in feedparser.parse(url).entries] for url in urls}
    return found, time.perf_counter() - began, _cpu(resource.RUSAGE_SELF) - cpu


def _tree_cpu(root: int, seen: dict[int, float]) -> None:
    """Record the CPU seconds so far of `root` and all its descendants, from /proc.

    Parse workers are grandchildren (forked by multiprocessing's forkserver), so the
    child's rusage does not count them; sampling the tree does, to within a sample.
    """
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree = {root}
    grew = True
    while grew:
        found = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= found
        grew = bool(found)
    for pid in tree:
        if pid in times:
            seen[pid] = max(seen.get(pid, 0.0), times[pid])


def _digest(urls: list[str], work: Path, workers: int) -> tuple[float, float, int, str]:
    """Wall time, CPU time (whole process tree) and peak RSS (KiB) of `digest feeds check`."""
    listing = work / "feeds.txt"
    listing.write_text("\n".join(urls) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        PYTHONPATH=str(REPO),
        DIGEST_FEEDS=str(listing),
        DIGEST_DATABASE_URL=f"sqlite:///{work / 'bench.db'}",
        DIGEST_SECRET_KEY="bench-secret-key-not-for-production-use",
        DIGEST_PARSE_WORKERS=str(workers),
    )
    began = time.perf_counter()
    out_path, err_path = work / "out.txt", work / "err.txt"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "feeds", "check"],
            env=env,
            cwd=work,
            stdout=out_file,
            stderr=err_file,
        )
        seen: dict[int, float] = {}
        while proc.poll() is None:
            _tree_cpu(proc.pid, seen)
            time.sleep(0.02)
    elapsed = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The child's own final figure is exact; its descendants' are the last samples.
    seen[proc.pid] = 0.0
    cpu = sum(seen.values()) + usage.ru_utime + usage.ru_stime
    if proc.returncode not in (0, 3):
        raise SystemExit(f"digest feeds check failed ({proc.returncode}):\n{err_path.read_text()}")
    summary = (out_path.read_text().strip().splitlines() or [""])[-1]
    return elapsed, cpu, usage.ru_maxrss, summary


def _stored(db: Path) -> dict[str, list[str]]:
    """The entry links `digest` stored for each feed."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT feed_url, entries FROM feed_cache").fetchall()
    return {url: [entry[1] for entry in json.loads(payload)] for url, payload in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=15, help="times each feed is served")
    parser.add_argument("--dir", type=Path, default=None, help="the real-feeds directory")
    parser.add_argument("--workers", type=int, default=0, help="DIGEST_PARSE_WORKERS (0: per core)")
    args = parser.parse_args()
    files = _feed_files(args.dir or _find_feeds_dir())
    ready: mp.Queue = mp.Queue()
    server = mp.Process(target=_serve, args=(files, ready), daemon=True)
    server.start()
    port = ready.get(timeout=10)
    urls = [
        f"http://127.0.0.1:{port}/copy{copy}/{name}"
        for copy in range(args.copies)
        for name in files
    ]
    size = sum(len(files[u.rsplit("/", 1)[-1]]) for u in urls)
    print(f"{len(urls)} real feeds ({len(files)} distinct), {size / 1e6:.1f} MB, on 127.0.0.1")
    try:
        with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
            work = Path(tmp)
            found, base_s, base_cpu = _baseline(urls)
            ours_s, ours_cpu, peak_kib, summary = _digest(urls, work, args.workers)
            stored = _stored(work / "bench.db")
    finally:
        server.terminate()

    from digest.collect.urls import canonical_url

    base_n = sum(len(v) for v in found.values())
    ours_n = sum(len(v) for v in stored.values())
    missing = [
        (url, link)
        for url, links in found.items()
        for link in links
        if canonical_url(link) not in {canonical_url(x) for x in stored.get(url, [])}
    ]
    covered = 100 * (base_n - len(missing)) / base_n if base_n else 100.0
    print(
        f"{'baseline feedparser, one at a time':36} {base_n:6d} entries {base_s:7.2f} s wall "
        f"{base_cpu:6.2f} s CPU"
    )
    print(
        f"{'digest feeds check (whole command)':36} {ours_n:6d} entries {ours_s:7.2f} s wall "
        f"{ours_cpu:6.2f} s CPU  peak {peak_kib / 1024:.0f} MB  ({summary})"
    )
    print(f"entries feedparser found that digest kept: {covered:.1f}%")
    for url, link in missing[:5]:
        print(f"  missing: {link} from {url}")
    print(f"ratio digest/baseline (wall time): {base_s / ours_s:.1f}x")
    print(f"ratio digest/baseline (CPU time, all processes): {base_cpu / ours_cpu:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
