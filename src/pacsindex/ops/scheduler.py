"""Continuous indexing: the schedule `pacsindex serve` keeps by itself.

An incremental pass every `index_every_minutes` (15) and a nightly full pass at `index_full_at` (02:00,
practice time); the full pass also reads again files that failed before (a NAS hiccup), and is followed by
the retention purge. Both are the ordinary indexing run (`IndexJobs`): a pass that falls due while a run
goes is skipped, not queued. The first pass comes one interval after the service starts, so a restart does
not start a run at once. An admin may change the interval and the night time and pause the schedule; that
is kept in the saved section "schedule" in the data directory, so it outlives a restart.

The timing is one thread waiting on an Event with a timeout (woken early by a change or a stop); the work
is the indexing run's own thread. Every scheduled start and failure is reported to `on_event`, which the
service writes to the audit log; a pass skipped because a run was going is only logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pacsindex.config import saved
from pacsindex.config.settings import Settings
from pacsindex.errors import ConfigError, PacsIndexError
from pacsindex.ingest.jobs import IndexJobs

__all__ = ["SECTION", "SCHEDULER", "Schedule", "Scheduler", "load_schedule", "next_full", "save_schedule"]

log = logging.getLogger(__name__)

SECTION = "schedule"
SCHEDULER = "scheduler"  # the name scheduled runs are started by, in the status and the audit log
Clock = Callable[[], float]
Event = Callable[[str, dict[str, Any]], None]  # (what: started or failed; details)


@dataclass(frozen=True)
class Schedule:
    every_minutes: float = 15.0  # 0: no incremental passes
    full_at: str = "02:00"  # "": no nightly pass
    paused: bool = False

    def check(self) -> Schedule:
        probe = Settings(index_every_minutes=self.every_minutes, index_full_at=self.full_at)
        probe.with_overrides()  # the same validation as the settings file (ConfigError)
        return self


def load_schedule(settings: Settings) -> Schedule:
    """The settings' schedule with what an admin saved on top."""
    values = saved.load(settings.data_path, SECTION)
    base = Schedule(settings.index_every_minutes, settings.index_full_at)
    try:
        return replace(
            base,
            every_minutes=float(values.get("every_minutes", base.every_minutes)),
            full_at=str(values.get("full_at", base.full_at)),
            paused=bool(values.get("paused", False)),
        ).check()
    except (TypeError, ValueError, ConfigError) as exc:
        raise ConfigError(f"the saved indexing schedule is damaged ({exc}); save it again") from exc


def save_schedule(settings: Settings, schedule: Schedule) -> Schedule:
    schedule.check()
    saved.save(settings.data_path, SECTION, asdict(schedule))
    return schedule


def next_full(after: float, full_at: str, tz: ZoneInfo) -> float | None:
    """The first time of day `full_at` (practice time) after `after`; None when there is no nightly pass."""
    if not full_at:
        return None
    hour, minute = (int(p) for p in full_at.split(":"))
    local = datetime.fromtimestamp(after, tz)
    at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at.timestamp() <= after:
        at = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at.timestamp()


class Scheduler:
    """Starts indexing runs on the schedule; `start()` and `stop()` go with the service's lifespan."""

    def __init__(
        self,
        jobs: IndexJobs,
        settings: Settings,
        *,
        roots: Callable[[], list[str]],
        on_event: Event | None = None,
        after_full: Callable[[], None] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.jobs = jobs
        self.settings = settings
        self.roots = roots
        self.on_event = on_event
        self.after_full = after_full  # the retention purge, once a night
        self.clock = clock
        self.schedule = load_schedule(settings)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        started = clock()
        self._next_incremental = self._after(started)
        self._next_full = next_full(started, self.schedule.full_at, settings.tz)
        self._last: dict[str, Any] | None = None  # the last scheduled pass: kind, at, outcome, message

    # -- lifespan --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name="pacsindex-schedule", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Look at the clock again now (after the clock jumped: a resumed computer, a test's clock)."""
        self._wake.set()

    # -- the admin's changes ---------------------------------------------------------------------------
    def change(
        self, *, every_minutes: float | None = None, full_at: str | None = None, paused: bool | None = None
    ) -> Schedule:
        with self._lock:
            new = Schedule(
                self.schedule.every_minutes if every_minutes is None else every_minutes,
                self.schedule.full_at if full_at is None else full_at,
                self.schedule.paused if paused is None else paused,
            )
            save_schedule(self.settings, new)
            now = self.clock()
            if new.every_minutes != self.schedule.every_minutes:
                self._next_incremental = self._after(now, new)
            if new.full_at != self.schedule.full_at:
                self._next_full = next_full(now, new.full_at, self.settings.tz)
            self.schedule = new
        self._wake.set()
        return new

    # -- what the page shows ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            schedule, inc, full, last = self.schedule, self._next_incremental, self._next_full, self._last
        kind, when = _first(inc, full)
        last_failed = None
        if last is not None:
            last = dict(last)
            if last.get("outcome") == "started" and not self.jobs.running:
                done = self.jobs.status()
                if done.get("started_by") == SCHEDULER:
                    last["outcome"] = done.get("state")
                    last["message"] = done.get("message")
            if last.get("outcome") == "failed":
                last_failed = last.get("message") or "the last scheduled run failed"
            last["at"] = self._show(last["at"])
        return {
            **asdict(schedule),
            "next_run": None if schedule.paused or when is None else self._show(when),
            "next_kind": None if schedule.paused else kind,
            "next_full": None if schedule.paused or full is None else self._show(full),
            "last": last,
            "last_failed": last_failed,
        }

    # -- the loop --------------------------------------------------------------------------------------
    def _after(self, now: float, schedule: Schedule | None = None) -> float | None:
        every = (schedule or self.schedule).every_minutes
        return now + every * 60 if every > 0 else None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                kind, when = _first(self._next_incremental, self._next_full)
            now = self.clock()
            if when is None or when > now:
                self._wake.wait(60.0 if when is None else min(60.0, when - now))
                self._wake.clear()
                continue
            try:
                self._due(kind)
            except Exception as exc:  # the schedule must go on whatever one pass did
                log.error("scheduled %s pass failed", kind, exc_info=exc)

    def _due(self, kind: str) -> None:
        now = self.clock()
        with self._lock:
            if kind == "full":
                self._next_full = next_full(now, self.schedule.full_at, self.settings.tz)
                self._next_incremental = self._after(now)  # the full pass covers the next interval too
            else:
                self._next_incremental = self._after(now)
            paused = self.schedule.paused
        if paused:
            pass  # pausing stops indexing, not retention: the purge below still runs at night
        elif self.jobs.running:
            self._note(kind, now, "skipped", "an indexing run was going")
        else:
            roots = self.roots()
            if not roots:
                self._note(kind, now, "skipped", "no folders to index are configured")
            else:
                options = replace(self.jobs.options, retry_errors=True, full=True) if kind == "full" else None
                try:
                    self.jobs.start(roots, started_by=SCHEDULER, options=options)
                except PacsIndexError as exc:
                    self._note(kind, now, "failed", str(exc))
                else:
                    self._note(kind, now, "started", None, roots=roots)
        if kind == "full" and self.after_full is not None:
            self.after_full()

    def _note(self, kind: str, at: float, outcome: str, message: str | None, **more: Any) -> None:
        with self._lock:
            self._last = {"kind": kind, "at": at, "outcome": outcome, "message": message}
        if outcome != "started":
            log.info("scheduled %s pass %s: %s", kind, outcome, message)
        # Skips are not audited: with no roots set up they would add an entry every interval.
        if self.on_event is not None and outcome != "skipped":
            self.on_event(outcome, {"kind": kind, **({"reason": message} if message else {}), **more})

    def _show(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.settings.tz).isoformat(timespec="seconds")


def _first(incremental: float | None, full: float | None) -> tuple[str, float | None]:
    if full is not None and (incremental is None or full <= incremental):
        return "full", full
    return "incremental", incremental
