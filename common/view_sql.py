"""SQL pieces the views need that the three backends spell differently, compiled per dialect by SQLAlchemy.

SQLite stores dates as TEXT ('YYYY-MM-DD') and datetimes as TEXT ('YYYY-MM-DD HH:MM:SS.ffffff'): its CAST(x AS DATE)
would read '2025-03-10 09:00:00' as the number 2025, so the date of a datetime is `date(x)` there. Date arithmetic
differs on every backend (julianday, date - date, DATEDIFF). `CREATE VIEW` is plain on all three; the view's SELECT
is rendered with its constants inline (a view cannot hold bound parameters).
"""

from __future__ import annotations

from sqlalchemy import Date, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Select
from sqlalchemy.sql.ddl import DDLElement
from sqlalchemy.sql.functions import FunctionElement


class local_date(FunctionElement):  # noqa: N801 - used like a SQL function
    """The date part of a naive local datetime column (the local date of an interval)."""

    type = Date()
    name = "local_date"
    inherit_cache = True


@compiles(local_date)
def _local_date(element: local_date, compiler, **kw) -> str:  # noqa: ANN001 - SQLAlchemy compiler hook
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(local_date, "sqlite")
def _local_date_sqlite(element: local_date, compiler, **kw) -> str:  # noqa: ANN001
    return f"date({compiler.process(element.clauses, **kw)})"


class days_between(FunctionElement):  # noqa: N801 - used like a SQL function
    """Whole days from the second date to the first (later, earlier) -> later - earlier."""

    type = Integer()
    name = "days_between"
    inherit_cache = True


def _two(element: days_between, compiler, **kw) -> tuple[str, str]:  # noqa: ANN001
    later, earlier = (compiler.process(c, **kw) for c in element.clauses.clauses)
    return later, earlier


@compiles(days_between)
def _days_between(element: days_between, compiler, **kw) -> str:  # noqa: ANN001 - PostgreSQL: date - date = integer
    later, earlier = _two(element, compiler, **kw)
    return f"({later} - {earlier})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler, **kw) -> str:  # noqa: ANN001
    later, earlier = _two(element, compiler, **kw)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


@compiles(days_between, "mssql")
def _days_between_mssql(element: days_between, compiler, **kw) -> str:  # noqa: ANN001
    later, earlier = _two(element, compiler, **kw)
    return f"DATEDIFF(day, {earlier}, {later})"


class CreateView(DDLElement):
    """CREATE VIEW name AS select (constants inline)."""

    inherit_cache = False

    def __init__(self, name: str, query: Select) -> None:
        self.name, self.query = name, query


class DropView(DDLElement):
    """DROP VIEW name (only issued for a view that exists: SQL Server before 2016 has no IF EXISTS)."""

    inherit_cache = False

    def __init__(self, name: str) -> None:
        self.name = name


@compiles(CreateView)
def _create_view(element: CreateView, compiler, **kw) -> str:  # noqa: ANN001
    body = compiler.sql_compiler.process(element.query, literal_binds=True)
    return f"CREATE VIEW {compiler.preparer.quote(element.name)} AS {body}"


@compiles(DropView)
def _drop_view(element: DropView, compiler, **kw) -> str:  # noqa: ANN001
    return f"DROP VIEW {compiler.preparer.quote(element.name)}"
