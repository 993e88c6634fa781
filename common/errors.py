"""Named exceptions the numbered scripts turn into one-line user errors.

`PipelineError` subclasses are expected failures (bad input, bad config, a
failed data check): the script prints their message on one line and exits with
their `exit_code`. Anything else is a bug and keeps its traceback.
"""


class PipelineError(Exception):
    """An expected failure with a message written for the person running the step."""

    exit_code = 1


class ConfigError(PipelineError):
    """The config file or an override is missing, malformed or out of range."""

    exit_code = 2


class DataError(PipelineError):
    """Input data cannot be used as it is (bad file, failed critical data check)."""

    exit_code = 2


class ModelError(PipelineError):
    """A model artifact is missing, corrupt, or cannot be used."""

    exit_code = 1
