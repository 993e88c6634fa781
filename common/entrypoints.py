"""The commands `pip install .` puts on PATH: each runs a numbered step exactly as `python N_step.py ...` does.

The step scripts' names start with a digit, so they are imported by name (importlib), not with an import statement.
"""

from __future__ import annotations

import importlib
import sys


def _run(module: str) -> None:
    sys.exit(importlib.import_module(module).main())


def load_bronze() -> None:
    _run("0_load_bronze")


def build_silver() -> None:
    _run("1_build_silver")


def segment_customers() -> None:
    _run("1_5_segment_customers")


def train() -> None:
    _run("2_train")


def forecast() -> None:
    _run("3_forecast")


def evaluate() -> None:
    _run("4_evaluate")


def report() -> None:
    _run("5_report")


def demo() -> None:
    _run("common.demo")
