"""Where an interval-report row lies in time, beyond what its own timestamp says: the repeated fall-back hour.

On the night the clocks go back (2025-10-26 in Stockholm) the wall-clock hour 02:00-03:00 happens twice. A
report in naive local time then has two rows for 02:00 (and 02:30, ...) per queue: the summer-time one first,
the winter-time one after it. Read one by one, both would be the first (summer-time) instant and the second
would replace the first as a newer copy of the same interval, losing an hour of calls. So, within one source
(file or SQL load), the first row of a queue at a repeated wall-clock time is the earlier instant, the second
row the later one, and any further row cannot be placed. Timestamps with a UTC offset need none of this.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SECOND_MARK = " (second)"  # added to the hashed text of a second-occurrence row (see `fall_back_repeats`)


def fall_back_repeats(local: np.ndarray, utc: np.ndarray, naive: np.ndarray, keys: np.ndarray, tz: str,
                      seen: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(utc, second, extra) for rows in source order: per row its UTC start with each second occurrence moved to
    the later instant, whether it is that second occurrence, and whether it is a third or later one.

    `local`/`utc`: naive datetime64[ns] as parsed (a repeated time as its first instant); `naive`: the row's
    text had no offset; `keys`: one value per row naming its source and queue (rows of one key are counted
    together). `seen` counts (key, local time) over calls, so a file read in several chunks counts as one.
    A second-occurrence row is also a different bronze row from an identical first one: the caller adds
    SECOND_MARK to the text it hashes (two intervals with the same numbers are two rows, not one repeated).
    """
    utc = utc.copy()
    second = np.zeros(len(local), dtype=bool)
    extra = second.copy()
    candidates = np.flatnonzero(naive & ~np.isnat(local))
    if not len(candidates):
        return utc, second, extra
    probe = pd.Series(local[candidates]).dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    ambiguous = candidates[probe.isna().to_numpy()]
    if not len(ambiguous):
        return utc, second, extra
    later = (pd.Series(local[ambiguous]).dt.tz_localize(tz, ambiguous=np.zeros(len(ambiguous), dtype=bool))
             .dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]"))
    for i, row in enumerate(ambiguous.tolist()):  # only rows in the repeated hour: a few per queue per year
        key = (keys[row], int(local[row].astype("int64")))
        count = seen.get(key, 0)
        seen[key] = count + 1
        if count == 1:
            second[row], utc[row] = True, later[i]
        elif count > 1:
            extra[row] = True
    return utc, second, extra
