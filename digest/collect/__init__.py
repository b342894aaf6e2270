"""Collect: fetch every feed, parse on every core, keep the window, drop repeats.

`collect(sources, start, end, feeds, settings) -> Collection` is the stage's
interface (see `collector`). The names are loaded lazily so that parsing worker
processes, which import `digest.collect.parse`, do not pay for HTTP and database
modules they never use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.collect.collector import Collection, check, collect

__all__ = ["Collection", "check", "collect"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from digest.collect import collector

        return getattr(collector, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
