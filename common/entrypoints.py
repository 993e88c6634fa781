"""The commands `pip install .` puts on PATH: each runs a numbered step exactly as `python N_step.py ...` does.

The step scripts' names start with a digit, so they are imported by name (importlib), not with an import statement.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def _command(module: str) -> Callable[[], None]:
    def run() -> None:
        sys.exit(importlib.import_module(module).main())

    run.__doc__ = f"`python {module.replace('.', '/')}.py` with this process's arguments."
    return run


load_bronze = _command("0_load_bronze")
build_silver = _command("1_build_silver")
segment_customers = _command("1_5_segment_customers")
train = _command("2_train")
forecast = _command("3_forecast")
reforecast_intraday = _command("3_5_reforecast_intraday")
evaluate = _command("4_evaluate")
report = _command("5_report")
capacity_plan = _command("6_capacity_plan")
demo = _command("common.demo")
api = _command("common.api")  # the REST API server (pip install "wfm-forecast[api]")
