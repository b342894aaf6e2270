"""Benchmark: how long `digest --help` takes to start, beside a bare `python -c pass`.

Each command runs in a fresh process, several times in turn; the median wall time
of each is printed with the ratio, since the machine is shared and only ratios
travel. Then the modules each entry point imports are counted: `--help` must
not load the database, the models or any stage, and `digest run` must not load
the web app or the preview server.

    python bench/startup.py [runs]
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time

HEAVY = ("sqlalchemy", "pydantic", "alembic", "httpx", "jinja2", "numpy", "sklearn")
NOT_FOR_RUN = ("starlette", "uvicorn", "playwright", "digest.web", "digest.preview")


def timed(args: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds, and median CPU seconds (user + system: less hurt by a busy host)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        walls.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def imported(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    return set(out.stdout.decode().split())


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    timed([sys.executable, "-m", "digest", "--help"], 2)  # warm the file cache
    base_wall, base_cpu = timed([sys.executable, "-c", "pass"], runs)
    wall, cpu = timed([sys.executable, "-m", "digest", "--help"], runs)
    print(f"median of {runs} runs      wall       CPU")
    print(f"python -c pass     {base_wall * 1000:7.1f} ms {base_cpu * 1000:7.1f} ms")
    print(
        f"digest --help      {wall * 1000:7.1f} ms {cpu * 1000:7.1f} ms"
        f"  ({wall / base_wall:.1f}x / {cpu / base_cpu:.1f}x baseline)"
    )

    on_help = imported("from digest.cli import cli")
    on_run = imported("import digest.cli, digest.job, digest.deliver.run")
    loaded = [m for m in HEAVY if m in on_help]
    print(f"--help imports {len(on_help)} modules; heavy ones: {', '.join(loaded) or 'none'}")
    extra = [m for m in NOT_FOR_RUN if m in on_run]
    print(f"run imports {len(on_run)} modules; web/preview ones: {', '.join(extra) or 'none'}")
    if loaded or extra:
        sys.exit("start-up imports more than it uses")


if __name__ == "__main__":
    main()
