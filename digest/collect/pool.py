"""Parse feeds on every core, each under a time budget (DIGEST_PARSE_TIMEOUT).

lxml releases little of the GIL and cleanup is Python, so threads would not
help: large runs parse in worker processes. The budget is enforced three ways,
so one hostile feed fails alone: `parse_feed` checks it between items, a worker
interrupts itself with SIGALRM a little later (for a single slow step), and the
parent gives up on a worker that still has not answered, replacing the pool.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import signal
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from digest.collect.parse import ParsedFeed, parse_feed
from digest.errors import FeedParseError, ParseTimeout

# Below this many feeds per worker, starting processes costs more than it saves.
_FEEDS_PER_WORKER = 8
# How far past the budget a worker interrupts itself, and the parent gives up on it.
_ALARM_GRACE = 1.0
_PARENT_GRACE = 5.0


def _parse_in_worker(
    content: bytes, url: str, summary_length: int, content_type: str, budget: float
) -> ParsedFeed:
    """parse_feed in a worker process, interrupted by an alarm if it overruns."""

    def alarm(signum: int, frame: object) -> None:
        raise ParseTimeout(budget)

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, budget + _ALARM_GRACE)
    try:
        return parse_feed(content, url, summary_length, content_type, budget)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _warm() -> None:
    """Nothing: submitted once per worker so processes start while feeds download."""


class ParsePool:
    """Runs `parse_feed` in worker processes, or in a thread for a handful of feeds."""

    def __init__(self, workers: int, feeds: int, budget: float) -> None:
        wanted = workers or os.cpu_count() or 1
        self.workers = max(1, min(wanted, math.ceil(feeds / _FEEDS_PER_WORKER)))
        self.budget = budget
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the worker processes now, so start-up overlaps the first downloads."""
        executor = self._executor()
        if executor is not None:
            for _ in range(self.workers):
                executor.submit(_warm)

    def _executor(self) -> ProcessPoolExecutor | None:
        if self.workers > 1 and self._pool is None:
            # forkserver: workers do not inherit the event loop or database connections.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["digest.collect.parse"])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return self._pool

    async def parse(
        self, content: bytes, url: str, summary_length: int, content_type: str
    ) -> ParsedFeed:
        args = (content, url, summary_length, content_type, self.budget)
        executor = self._executor()
        if executor is None:
            return await asyncio.to_thread(parse_feed, *args)
        for attempt in range(2):
            try:
                return await self._in_process(executor, args)
            except BrokenProcessPool:
                # A worker died (killed for memory, or stopped for another feed's overrun):
                # start afresh and try once more, so other feeds do not pay for it.
                self._discard(executor)
                if attempt:
                    raise FeedParseError("the parser process died reading this feed") from None
                executor = self._executor()
                assert executor is not None
        raise AssertionError("unreachable")

    async def _in_process(self, executor: Executor, args: tuple) -> ParsedFeed:
        future = asyncio.get_running_loop().run_in_executor(executor, _parse_in_worker, *args)
        try:
            return await asyncio.wait_for(future, self.budget + _PARENT_GRACE)
        except TimeoutError:
            # The worker is stuck inside C code the alarm cannot interrupt: stop the pool.
            self._discard(executor, kill=True)
            raise ParseTimeout(self.budget) from None

    def _discard(self, executor: Executor, *, kill: bool = False) -> None:
        if self._pool is not executor:
            return
        self._pool = None
        if kill:
            for process in list((executor._processes or {}).values()):  # type: ignore[attr-defined]
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
