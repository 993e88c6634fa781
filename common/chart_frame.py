"""How every report chart looks: one palette, a grid of panels with a title and footnote, math text off, and a
PNG written whole or not at all. `plots.py` draws the charts on top of these.
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec

import pandas as pd

from common.files import atomic_write
from common.report_queues import is_others

if TYPE_CHECKING:
    from matplotlib.figure import Figure

P = ParamSpec("P")

DPI = 110
# One palette for every chart (and the email): actuals dark grey, forecast blue, past spans light greys.
ACTUAL = "#333333"
FORECAST = "#1f5fa8"
PAST_SPANS = ("#e0e0e0", "#c8c8c8", "#b0b0b0", "#989898", "#808080", "#686868")
THRESHOLD = "#c62828"
WARNING = "#e09b00"
ALL_QUEUES = "All queues"
NOTE = {"ha": "center", "va": "center", "fontsize": 10, "color": "#7a7a7a", "wrap": True}


def panel_grid(n: int) -> tuple[int, int]:
    """(rows, cols) for n panels: one wide column for a few queues, up to three for many."""
    cols = 1 if n <= 3 else 2 if n <= 8 else 3
    return math.ceil(n / cols), cols


def new_figure(n_panels: int, panel_height: float, title: str, subtitle: str, width: float = 14.0,
               sharex: bool = True) -> tuple[Figure, list]:
    from matplotlib.figure import Figure  # on use: `5_report.py --help` must not wait for matplotlib

    rows, cols = panel_grid(max(n_panels, 1))
    fig = Figure(figsize=(width, 1.3 + rows * panel_height), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=sharex).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    titles(fig, title, subtitle)
    return fig, axes[:max(n_panels, 1)]


def titles(fig: Figure, title: str, subtitle: str) -> None:
    """What the chart shows and for which as-of on top (bold); how to read it as a footnote."""
    fig.suptitle(title, fontsize=14, fontweight="bold", x=0.01, ha="left")
    # ~13 characters of 9 pt text per inch of figure width: wrap so the footnote never runs off the picture.
    width = int(fig.get_figwidth() * 13)
    fig.supxlabel(textwrap.fill(subtitle, width), fontsize=9, color="#555555", x=0.01, ha="left")


def save_png(fig: Figure, path: Path) -> Path:
    """Write the chart whole or not at all (a full disk leaves no 0-byte chart behind; the caller reports the error),
    as a 256-colour PNG: on these flat-coloured charts it looks the same at about a third of the bytes (the email)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    image = Image.open(buf).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG", optimize=True))


def plain_text(chart: Callable[P, Path]) -> Callable[P, Path]:
    """Draw the chart with math text off: queue names are data, and two '$' in one ("Top-up $10 # $20") would be
    parsed as a formula (and crash on '#'). Text objects read the setting when created, so it wraps the whole chart."""
    @functools.wraps(chart)
    def plain(*args: P.args, **kwargs: P.kwargs) -> Path:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return chart(*args, **kwargs)
    return plain


def empty_chart(path: Path, title: str, subtitle: str, note: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    titles(fig, title, subtitle)
    ax.text(0.5, 0.5, note, transform=ax.transAxes, **NOTE)
    return save_png(fig, path)


def thousands(ax, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: f"{v:,.0f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def panel_order(queues: Iterable[str]) -> list[str]:
    """Queues by name, the "All other queues (K)" aggregate (common/report_queues.py) last."""
    return sorted(queues, key=lambda q: (is_others(q), q))


def day_start(value: date | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()
