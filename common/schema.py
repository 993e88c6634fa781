"""The schema on the database: create the declared tables, and add the columns a newer version declares.

Separate from `db` (writes and reads) because it is the one place that issues DDL.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone

from sqlalchemy import Column, Engine, Index, Table, delete, insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import DDLElement

from common import tables, views
from common.errors import DataError
from common.view_sql import CreateView, DropView

log = logging.getLogger(__name__)


def ensure_schema(engine: Engine) -> None:
    """Create any table that does not exist yet, and add the nullable columns and the indexes a newer version declares.

    Additive only: a column is never renamed, retyped or dropped (gold tables are a contract with Power BI users;
    docs/migrations.md lists every added column). A database made by an older version gains the new columns,
    empty (NULL) for the rows it already holds, the first time a newer step runs.
    """
    create_tables(engine)
    with engine.begin() as conn:
        for table, column in missing_columns(conn):
            if not column.nullable:
                raise DataError(f"table {table.name} lacks column {column.name}, which cannot be added to existing "
                                "rows (not nullable); see docs/migrations.md")
            ddl = AddColumn(table, column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(str(ddl))
            log.info("schema: added column %s.%s (%s), NULL in existing rows", table.name, column.name, column.type)
        for index in missing_indexes(conn):
            index.create(conn)
            log.info("schema: created index %s on %s", index.name, index.table.name)
    ensure_views(engine)


def ensure_views(engine: Engine) -> None:
    """Create the views of `common.views` that are missing, and recreate those whose SQL changed (a new version, or a
    column a table gained: the views list their columns). A view is left alone while its SQL is unchanged, so the
    nightly steps do not take a lock on what Power BI is reading.

    A view that cannot be created is a warning, not a failed step: the tables are the contract, the views a
    convenience over them (e.g. on PostgreSQL a user's own view that reads ours blocks the DROP; the next step tries
    again).
    """
    try:
        with engine.begin() as conn:
            stale = stale_views(conn)
            existing = set(inspect(conn).get_view_names()) if stale else set()
            record = tables.schema_views
            for view, sql in stale:
                if view.name in existing:
                    conn.execute(DropView(view.name))
                conn.execute(CreateView(view.name, view.query))
                conn.execute(delete(record).where(record.c.view_name == view.name))
                conn.execute(insert(record).values(view_name=view.name, sql_sha256=_sha(sql), created_at=_utc_now()))
        if stale:
            log.info("schema: created view(s) %s", ", ".join(v.name for v, _ in stale))
    except DBAPIError as exc:
        log.warning("schema: the views could not be created or updated (the tables are fine, the next step tries "
                    "again): %s", str(exc.orig).splitlines()[0] if exc.orig else exc)


def stale_views(conn: Connection) -> list[tuple[views.View, str]]:
    """(view, its CREATE VIEW for this backend) for every view that is missing or was created from other SQL."""
    existing = set(inspect(conn).get_view_names())
    record = tables.schema_views
    created = dict(conn.execute(select(record.c.view_name, record.c.sql_sha256)).all())
    out = []
    for view in views.VIEWS:
        sql = str(CreateView(view.name, view.query).compile(dialect=conn.dialect))
        if view.name not in existing or created.get(view.name) != _sha(sql):
            out.append((view, sql))
    return out


def _sha(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


def _utc_now() -> datetime:
    """Naive UTC, as db.utc_now (db imports this module, not the other way round)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


# What a database says when a table another run created a moment ago is created again (SQLite, PostgreSQL: "already
# exists", or a duplicate row in its type catalogue; SQL Server: "There is already an object named").
_CREATED_MEANWHILE = ("already exists", "already an object named", "pg_type_typname_nsp_index")


def create_tables(engine: Engine, attempts: int = 3) -> None:
    """Create the declared tables that do not exist. Two runs on a fresh database both find a table missing and
    both create it: the loser's "already exists" means the table is there, so the check is simply made again."""
    for attempt in range(attempts):
        try:
            tables.metadata.create_all(engine)
            return
        except DBAPIError as exc:
            if attempt == attempts - 1 or not any(s in str(exc.orig).lower() for s in _CREATED_MEANWHILE):
                raise
            log.info("schema: another run created tables at the same time (%s); checking again",
                     str(exc.orig).splitlines()[0])


def missing_columns(conn: Connection) -> list[tuple[Table, Column]]:
    """(table, column) for every declared column that an existing table lacks."""
    found = inspect(conn)
    existing = set(found.get_table_names())
    out = []
    for table in tables.metadata.sorted_tables:
        if table.name not in existing:
            continue
        have = {c["name"].lower() for c in found.get_columns(table.name)}
        out += [(table, c) for c in table.columns if c.name.lower() not in have]
    return out


def missing_indexes(conn: Connection) -> list[Index]:
    """Every declared index that an existing table lacks (create_all only indexes the tables it creates)."""
    found = inspect(conn)
    existing = set(found.get_table_names())
    out = []
    for table in tables.metadata.sorted_tables:
        if table.name in existing and table.indexes:
            have = {(i["name"] or "").lower() for i in found.get_indexes(table.name)}
            out += sorted((i for i in table.indexes if i.name.lower() not in have), key=lambda i: i.name)
    return out


class AddColumn(DDLElement):
    """ALTER TABLE t ADD [COLUMN] c type, compiled per dialect (SQL Server has no COLUMN keyword)."""

    inherit_cache = False

    def __init__(self, table: Table, column: Column) -> None:
        self.table, self.column = table, column


@compiles(AddColumn)
def _add_column(element: AddColumn, compiler, **kw) -> str:  # noqa: ANN001 - SQLAlchemy compiler hook
    prep = compiler.sql_compiler.preparer
    spec = compiler.get_column_specification(element.column)
    keyword = "" if compiler.dialect.name == "mssql" else "COLUMN "
    return f"ALTER TABLE {prep.format_table(element.table)} ADD {keyword}{spec}"
