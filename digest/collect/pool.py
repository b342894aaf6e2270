"""Parse feeds on every core: lxml releases little of the GIL, so threads would not help."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from digest.collect.parse import FeedParseError, ParsedFeed, parse_feed

# Below this many feeds per worker, starting processes costs more than it saves.
_FEEDS_PER_WORKER = 8


class ParsePool:
    """Runs `parse_feed` in worker processes, or in a thread for a handful of feeds."""

    def __init__(self, workers: int, feeds: int) -> None:
        wanted = workers or os.cpu_count() or 1
        self.workers = max(1, min(wanted, math.ceil(feeds / _FEEDS_PER_WORKER)))
        self._pool: Executor | None = None

    def _executor(self) -> Executor | None:
        if self.workers > 1 and self._pool is None:
            # forkserver: workers do not inherit the event loop or database connections.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["digest.collect.parse"])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return self._pool

    async def parse(
        self, content: bytes, url: str, summary_length: int, content_type: str
    ) -> ParsedFeed:
        executor = self._executor()
        if executor is None:
            return await asyncio.to_thread(parse_feed, content, url, summary_length, content_type)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                executor, parse_feed, content, url, summary_length, content_type
            )
        except BrokenProcessPool:
            # A worker died (killed for memory, say): start afresh for the other feeds.
            if self._pool is executor:
                executor.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            raise FeedParseError("the parser process died while reading this feed") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
