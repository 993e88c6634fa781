"""wfm-forecast: the shared package behind the numbered pipeline steps."""

# One place for the version: pyproject.toml reads it, `--version` prints it, pipeline_runs records it per run.
__version__ = "0.7.0"
