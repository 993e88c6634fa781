"""What every table module shares: the one MetaData and the column types of ids and names."""

from sqlalchemy import MetaData, String

metadata = MetaData()

ID = String(200)  # ids from ACD exports: long enough for joined keys ("AA0101|34536|990201")
NAME = String(100)

# Column(info=...) for the data dictionary (python -m common.dictionary): the unit of a number, and UTC for a
# bookkeeping timestamp whose name does not end in _utc. Other datetimes are local wall clock, by name.
CALLS = {"unit": "calls"}
SECONDS = {"unit": "seconds"}
MINUTES = {"unit": "minutes"}
HOURS = {"unit": "hours"}
SHARE = {"unit": "share (0-1)"}
AGENTS = {"unit": "agents"}
FTE = {"unit": "FTE"}
DAYS = {"unit": "days"}
UTC = {"tz": "UTC"}

# Columns named alike mean alike: a column declared without a comment gets its name's (describe_shared).
SHARED_DOCS = {
    "run_id": "pipeline_runs.run_id of the step run that wrote the row",
    "queue": "queue name as in silver (after rules.queue_aliases)",
    "forecast_origin": "the forecast's as-of: the local date it was made for, from data before it only",
    "as_of": "the run's as-of (local date): actuals up to the day before were known",
    "date": "local date",
    "interval_start": "start of the interval, local wall clock",
    "interval_start_utc": "start of the interval, UTC: with queue the interval's key (two 02:00 on the fall-back day)",
}


def describe_shared(meta: MetaData) -> None:
    """Give every column of `meta` declared without a comment the shared description of its name, if any."""
    for table in meta.tables.values():
        for column in table.columns:
            if column.comment is None and column.name in SHARED_DOCS:
                column.comment = SHARED_DOCS[column.name]
