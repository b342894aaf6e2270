"""`digest schedule`: the long-running process that sends every morning.

It wakes at DIGEST_SEND_AT in DIGEST_TIMEZONE for subscribers without a delivery
hour of their own, and at the top of every hour for those with one. A run missed
while the process was down is caught up at start-up when still inside
DIGEST_CATCH_UP_HOURS, and logged as missed otherwise. SIGTERM and SIGINT let the
message in flight finish, then the process exits 0.

When the morning's collection fails wholesale (a feed outage, see digest.job),
the send function says so and the morning is tried again with backoff (2, 4, 8,
then every 15 minutes) until DIGEST_SEND_DEADLINE; the attempt at the deadline
sends what it has, or records a missed morning.

Double sends are impossible by construction, not by timing: every send goes
through the edition lock and the deliveries table (see digest.deliver.run).
"""

from __future__ import annotations

import datetime as _dt
import logging
import signal
import threading
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import schedule

from digest.config import Settings
from digest.errors import CollectionFailed, DigestError
from digest.logs import edition_context
from digest.models import Subscriber

if TYPE_CHECKING:  # `digest health` reads only the heartbeat: keep its start-up light
    from digest.db import Database
    from digest.deliver.run import RunReport

log = logging.getLogger(__name__)

# The longest the loop sleeps, in real seconds: the heartbeat stays fresh and a
# stop signal is noticed promptly even when the next run is hours away.
MAX_SLEEP = 30.0
HEARTBEAT_FILE = Path(".digest-heartbeat")
HEARTBEAT_MAX_AGE = timedelta(seconds=MAX_SLEEP * 4)

# Retries of a morning whose collection failed: the first delay, doubled up to the last.
RETRY_FIRST = timedelta(minutes=2)
RETRY_MAX = timedelta(minutes=15)

SendFunc = Callable[[datetime, bool, bool], object]
"""send(now, hourly, retry): build or reuse the edition for `now` and send what is due
(`retry`: a further attempt at a morning whose collection failed). CollectionFailed
says the feeds are down: the morning is tried again unless it is already missed."""


class Clock:
    """The wall clock, or a test clock that starts at a given time and runs faster.

    The test clock (DIGEST_CLOCK_START, DIGEST_CLOCK_SPEED) lets a test watch two
    mornings go by in seconds, with the real `schedule` package deciding when.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        self._start = start.astimezone(UTC) if start else None
        self._origin_real = datetime.now(UTC)
        self._origin = self._start or self._origin_real
        self.speed = speed
        self.simulated = start is not None or speed != 1.0

    def restart(self) -> None:
        """Count from now: a test clock starts with the loop, not with the set-up before it
        (at two simulated hours a second, set-up alone would be a minute late)."""
        real = datetime.now(UTC)
        self._origin = self._start or real
        self._origin_real = real

    def now(self) -> datetime:
        elapsed = datetime.now(UTC) - self._origin_real
        return self._origin + elapsed * self.speed

    def real_seconds(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.speed


def _use_clock(clock: Clock) -> None:
    """Make the `schedule` package read the test clock (it calls datetime.now() itself)."""

    class ClockedDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
            current = clock.now()
            return current.astimezone(tz) if tz else current.astimezone().replace(tzinfo=None)

    schedule.datetime = types.SimpleNamespace(  # type: ignore[attr-defined]
        datetime=ClockedDatetime, time=_dt.time, timedelta=_dt.timedelta
    )


def last_scheduled(now: datetime, send_at: str, tz: ZoneInfo) -> datetime:
    """The most recent daily send time at or before `now` (aware UTC)."""
    hour, minute = (int(part) for part in send_at.split(":")[:2])
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), _dt.time(hour, minute), tz)
    if candidate > local:
        candidate = datetime.combine(local.date() - timedelta(days=1), _dt.time(hour, minute), tz)
    return candidate.astimezone(UTC)


class Scheduler:
    """Runs `send` on the daily and hourly marks until stopped."""

    def __init__(
        self,
        settings: Settings,
        send: SendFunc,
        is_done: Callable[[datetime], bool],
        clock: Clock | None = None,
        heartbeat: Path = HEARTBEAT_FILE,
    ) -> None:
        self.settings = settings
        self.send = send
        self.is_done = is_done
        self.clock = clock or Clock()
        self.heartbeat = heartbeat
        self.stop = threading.Event()
        self.tz = ZoneInfo(settings.timezone)
        self.jobs = schedule.Scheduler()
        self.retry_at: datetime | None = None
        self.retry_delay = RETRY_FIRST

    def run_forever(self) -> None:
        if self.clock.simulated:
            _use_clock(self.clock)
        self._install_signal_handlers()
        self.jobs.every().day.at(self.settings.send_at, self.settings.timezone).do(
            self._fire, hourly=False
        )
        self.jobs.every().hour.at(":00").do(self._fire, hourly=True)
        log.info(
            "scheduler started: daily at %s %s, hourly for subscribers' own hours",
            self.settings.send_at,
            self.settings.timezone,
        )
        self.clock.restart()
        self.catch_up()
        while not self.stop.is_set():
            self.jobs.run_pending()
            self._retry_if_due()
            self._beat()
            idle = self.jobs.idle_seconds or 0.0
            if self.retry_at is not None:
                idle = min(idle, (self.retry_at - self.clock.now()).total_seconds())
            self.stop.wait(min(MAX_SLEEP, max(0.05, self.clock.real_seconds(idle))))
        log.info("scheduler stopped")

    def catch_up(self) -> None:
        """Send a run missed while the process was down, if still inside the grace period."""
        now = self.clock.now()
        missed = last_scheduled(now, self.settings.send_at, self.tz)
        if self.is_done(missed):
            return
        late = now - missed
        if late <= timedelta(hours=self.settings.catch_up_hours):
            log.info("catching up the run due at %s (%s late)", missed.isoformat(), late)
            self._fire(hourly=False)
        else:
            log.warning(
                "missed the run due at %s: %s late, past DIGEST_CATCH_UP_HOURS=%s",
                missed.isoformat(),
                late,
                self.settings.catch_up_hours,
            )

    def _fire(self, hourly: bool, retry: bool = False) -> None:
        if self.stop.is_set():
            return
        now = self.clock.now()
        again = False
        try:
            self.send(now, hourly, retry)
        except CollectionFailed as exc:
            log.warning("%s", exc)
            again = not exc.missed
        except DigestError as exc:  # worded for the operator already: no traceback
            log.error("scheduled run failed: %s; the next one is still scheduled", exc)
        except Exception:
            # One bad morning must not end the process that sends all the others.
            log.exception("scheduled run failed; the next one is still scheduled")
        if not hourly:
            self._plan_retry(now, again)

    def _plan_retry(self, now: datetime, again: bool) -> None:
        """After a daily attempt: another one with backoff, capped at the deadline, or none."""
        from digest.job import send_deadline

        deadline = send_deadline(now, self.settings)
        if not again or now >= deadline:
            self.retry_at, self.retry_delay = None, RETRY_FIRST
            return
        self.retry_at = min(now + self.retry_delay, deadline)
        self.retry_delay = min(self.retry_delay * 2, RETRY_MAX)
        log.warning(
            "collection failed: trying the morning again at %s (until DIGEST_SEND_DEADLINE %s)",
            self.retry_at.isoformat(),
            self.settings.send_deadline,
        )

    def _retry_if_due(self) -> None:
        if self.retry_at is not None and self.clock.now() >= self.retry_at:
            self.retry_at = None
            self._fire(hourly=False, retry=True)

    def _beat(self) -> None:
        try:
            self.heartbeat.write_text(datetime.now(UTC).isoformat())
        except OSError as exc:
            log.warning("cannot write the heartbeat file %s: %s", self.heartbeat, exc)

    def _install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: object) -> None:
            log.info(
                "%s received: finishing the message in flight, then exiting",
                signal.Signals(signum).name,
            )
            self.stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


def for_database(settings: Settings, db: Database) -> Scheduler:
    """The scheduler `digest schedule` runs: each mark sends through `job.run_edition`."""
    # Loaded now, before the clock starts: a sped-up test clock would count the import.
    import digest.job  # noqa: F401

    scheduler = Scheduler(
        settings,
        send=lambda now, hourly, retry: send_due(
            settings, db, now, hourly=hourly, retry=retry, stop=scheduler.stop
        ),
        is_done=lambda when: edition_sent(settings, db, when),
        clock=Clock(settings.clock_start, settings.clock_speed),
    )
    return scheduler


def send_due(
    settings: Settings,
    db: Database,
    now: datetime,
    *,
    hourly: bool,
    stop: threading.Event,
    retry: bool = False,
) -> RunReport | None:
    """One scheduled send of the edition for `now`, to whoever is due and does not have it.

    At DIGEST_SEND_AT: subscribers without a delivery hour of their own. Hourly:
    those whose own hour has come in their time zone. None when nobody is waiting,
    so idle hours neither build an edition nor record a run. Raises CollectionFailed
    when the feeds are down (`retry`: a further attempt at the same morning).
    """
    from digest.job import EditionDay, run_edition

    due = _own_hour_reached(now) if hourly else _no_own_hour
    if not db.ledger.undelivered_count(EditionDay.of(settings, now).id, due, to_try=True):
        return None
    report = run_edition(settings, db, now=now, due=due, stop=stop, retry=retry)
    with edition_context(report.edition_id):
        log.info("%s", report.summary())
    return report


def edition_sent(settings: Settings, db: Database, when: datetime) -> bool:
    """Whether everyone due at the daily send time has the edition for `when`."""
    from digest.job import EditionDay

    day = EditionDay.of(settings, when).id
    return not db.ledger.undelivered_count(day, _no_own_hour, to_try=True)


def _no_own_hour(subscriber: Subscriber) -> bool:
    return subscriber.delivery_hour is None


def _own_hour_reached(now: datetime) -> Callable[[Subscriber], bool]:
    def due(subscriber: Subscriber) -> bool:
        hour = subscriber.delivery_hour
        return hour is not None and now.astimezone(ZoneInfo(subscriber.timezone)).hour >= hour

    return due


def heartbeat_is_fresh(path: Path = HEARTBEAT_FILE) -> bool:
    """True while a scheduler has written its heartbeat recently (the container health check)."""
    try:
        beat = datetime.fromisoformat(path.read_text().strip())
    except (OSError, ValueError):
        return False
    return datetime.now(UTC) - beat <= HEARTBEAT_MAX_AGE
