"""Progress of long loops: a tqdm bar when a person watches (a TTY), steady log lines when a log is the reader.

Under cron or `run_daily.sh` (stderr piped through `tee`) a bar never draws, so a 80-second load would be silent and
then print everything with one timestamp. There, `Progress` writes one INFO line every `every_seconds` (10 s), or
at each further 10% of the total once 2 s have passed since the last line (a quick loop stays quiet), with the
count, the rows, the rate and the time left.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Progress:
    """Counts `done` of `total` items (and rows); reports on a TTY bar or in the log at a steady cadence."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it", every_seconds: float = 10.0,
                 logger: logging.Logger | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.desc, self.total, self.unit, self.every_seconds = desc, total, unit, every_seconds
        self.logger = logger or log
        self.clock = clock
        self.done = self.rows = 0
        self.started = self._last_time = clock()
        self._last_tenth = 0
        self.lines = 0  # log lines written, for tests and the closing line
        self._bar = None
        if sys.stderr.isatty() if tty is None else tty:
            from tqdm import tqdm

            self._bar = tqdm(desc=desc, unit=unit, total=total, leave=False)

    def advance(self, done: int = 1, rows: int = 0) -> None:
        """Add `done` items and `rows` rows; log a line when the cadence says so."""
        self.done += done
        self.rows += rows
        if self._bar is not None:
            self._bar.update(done)
            return
        now = self.clock()
        tenth = 10 * self.done // self.total if self.total else 0
        since = now - self._last_time
        if since >= self.every_seconds or (tenth > self._last_tenth and since >= self.every_seconds / 5):
            self._last_time, self._last_tenth = now, tenth
            if self.total is None or self.done < self.total:  # the caller's own summary closes the loop
                self._log(now)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _log(self, now: float) -> None:
        seconds = max(now - self.started, 1e-9)
        of = f" of {self.total:,} ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rows = f", {self.rows:,} rows ({self.rows / seconds:,.0f} rows/s)" if self.rows else ""
        left = ""
        if self.total and 0 < self.done < self.total:
            left = f", about {seconds * (self.total - self.done) / self.done:.0f}s left"
        self.logger.info("%s: %s%s %s%s, %.0fs%s", self.desc, f"{self.done:,}", of, self.unit, rows, seconds, left)
        self.lines += 1


def progress(items: Iterable[T], desc: str, unit: str = "it", total: int | None = None) -> Iterator[T]:
    """Iterate `items` with `Progress`: a bar on a terminal, else a log line every 10 s or 10%."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    meter = Progress(desc, total=total, unit=unit)
    try:
        for item in items:
            yield item
            meter.advance()
    finally:
        meter.close()
