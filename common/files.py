"""Files the pipeline writes (charts, .eml): whole or not at all.

A chart or message is written to a temporary file in its folder, then renamed over the target (`os.replace`, atomic
on one file system): a full disk or a read-only folder leaves the previous file (or none), never a 0-byte or half
one, and no temporary file behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Create `path`'s folder, call `write(tmp)` to write a temporary file next to it, then rename it to `path`.
    On any failure the temporary file is removed and the error raised; `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
