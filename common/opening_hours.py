"""Opening hours: `rules.opening_hours` validated into per-queue, per-weekday windows of local wall-clock minutes.

`calendar` uses them to say when a queue is open (`is_open_at`, `interval_grid`); the config loader parses them at
load so a bad window stops the run before any work.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.errors import ConfigError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_WINDOW_HELP = 'use "HH:MM-HH:MM" (close after open) or closed'

Window = tuple[int, int] | None


@dataclass(frozen=True)
class OpeningHours:
    """Per-queue, per-weekday opening windows in local wall-clock minutes since midnight.

    A window `(open_min, close_min)` means open on `[open_min, close_min)`;
    `close_min` may be 1440 (24:00). `None` means closed all day. Queues not
    listed in `queues` use `default`.
    """

    default: dict[str, Window]
    queues: dict[str, dict[str, Window]]

    def window(self, queue: str, weekday: int) -> Window:
        """The window of `queue` on `weekday` (0=Mon .. 6=Sun)."""
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {weekday!r} must be 0 (Mon) .. 6 (Sun)")
        return self.queues.get(queue, self.default)[WEEKDAYS[weekday]]


def _parse_window(value: object, key: str) -> Window:
    if value is None or (isinstance(value, str) and value.strip().lower() == "closed"):
        return None
    if not isinstance(value, str):
        # PyYAML reads unquoted `no`/`off` as False and 8:00 as a sexagesimal int.
        raise ConfigError(
            f"{key}: {value!r} ({type(value).__name__}) is not a time window; "
            f'{_WINDOW_HELP} (quote the value in YAML)'
        )
    match = _WINDOW_RE.match(value)
    if match is None:
        raise ConfigError(f"{key}: {value!r} is not a time window; {_WINDOW_HELP}")
    oh, om, ch, cm = (int(g) for g in match.groups())
    if oh > 23 or om > 59 or ch > 24 or cm > 59 or (ch == 24 and cm != 0):
        raise ConfigError(
            f"{key}: {value!r} has a time out of range; hours are 00-23 and minutes "
            f"00-59 (24:00 is allowed as a close); {_WINDOW_HELP}"
        )
    open_min, close_min = oh * 60 + om, ch * 60 + cm
    if close_min < open_min:
        raise ConfigError(f"{key}: {value!r} ends before it starts; {_WINDOW_HELP}")
    if close_min == open_min:
        raise ConfigError(f"{key}: {value!r} is empty (opens and closes at once); {_WINDOW_HELP}")
    return (open_min, close_min)


def _parse_week(spec: object, key: str, *, complete: bool) -> dict[str, Window]:
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{key}: expected a mapping of weekday -> \"HH:MM-HH:MM\" or closed, got {spec!r}"
        )
    week: dict[str, Window] = {}
    for day, value in spec.items():
        if day not in WEEKDAYS:
            hint = difflib.get_close_matches(str(day).lower(), WEEKDAYS, n=1, cutoff=0.5)
            did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
            raise ConfigError(
                f"{key}.{day}: unknown weekday {day!r}; {did_you_mean}"
                f"weekdays are {', '.join(WEEKDAYS)}"
            )
        week[day] = _parse_window(value, f"{key}.{day}")
    missing = [d for d in WEEKDAYS if d not in week]
    if complete and missing:
        raise ConfigError(
            f"{key}: missing weekday(s) {', '.join(missing)}; list all 7 "
            f'({", ".join(WEEKDAYS)}), each "HH:MM-HH:MM" or closed'
        )
    return week


def parse_opening_hours(spec: dict, key: str = "rules.opening_hours") -> OpeningHours:
    """Validate the `rules.opening_hours` config block into `OpeningHours`.

    `spec` is `{"default": {mon..sun: "HH:MM-HH:MM" | "closed" | None},
    "queues": {queue: {some weekdays: ...}}}`. A queue override may list only
    some weekdays; the rest come from `default`. Queue names are turned into
    `str` because YAML reads an unquoted `100` as an int.
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"{key}: expected a mapping with 'default' and 'queues', got {spec!r}")
    unknown = [k for k in spec if k not in ("default", "queues")]
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key; expected 'default' and 'queues'")
    if "default" not in spec:
        raise ConfigError(f"{key}.default: missing; list all 7 weekdays ({', '.join(WEEKDAYS)})")
    default = _parse_week(spec["default"], f"{key}.default", complete=True)
    ordered_default = {d: default[d] for d in WEEKDAYS}

    queues_spec = spec.get("queues") or {}
    if not isinstance(queues_spec, dict):
        raise ConfigError(f"{key}.queues: expected a mapping of queue -> weekdays, got {queues_spec!r}")
    queues: dict[str, dict[str, Window]] = {}
    for queue, override in queues_spec.items():
        week = _parse_week(override or {}, f"{key}.queues.{queue}", complete=False)
        queues[str(queue)] = {d: week.get(d, ordered_default[d]) for d in WEEKDAYS}
    return OpeningHours(default=ordered_default, queues=queues)


def window_table(queue_names: Sequence, hours: OpeningHours) -> tuple[np.ndarray, np.ndarray]:
    """open/close minutes, shape (len(queue_names) + 1, 7); the last row is the default.

    A closed day is (0, 0): no time or interval satisfies open <= t < close.
    """
    n = len(queue_names)
    opens = np.zeros((n + 1, 7), dtype=np.int64)
    closes = np.zeros((n + 1, 7), dtype=np.int64)
    for row, name in enumerate([*queue_names, None]):
        week = hours.queues.get(name, hours.default) if name is not None else hours.default
        for wd, day in enumerate(WEEKDAYS):
            if week[day] is not None:
                opens[row, wd], closes[row, wd] = week[day]
    return opens, closes
