"""Only what pyproject.toml cannot say: the numbered step scripts as top-level modules.

`pip install .` then carries the very same steps as a clone; common.entrypoints imports them by name (a module
name starting with a digit cannot appear in an import statement, and pyproject's `py-modules` refuses it).
"""

from setuptools import setup

STEPS = ["0_load_bronze", "1_build_silver", "1_5_segment_customers", "2_train", "3_forecast", "3_5_reforecast_intraday", "4_evaluate", "5_report", "6_capacity_plan"]

setup(py_modules=STEPS)
