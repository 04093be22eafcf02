"""Copy every table of one chatquota database into another, empty and migrated one.

Used to move a SQLite deployment to PostgreSQL: the source is read in one
transaction (one consistent snapshot), the target written in one transaction
(all or nothing), tables in foreign-key order, then the target's id sequences
are moved past the copied ids. Flask-free: it takes engines and metadata.
"""

from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import Connection, Engine

BATCH = 1000
VERSION_TABLE = "alembic_version"


class CopyError(Exception):
    """The copy cannot start; nothing was written."""


def copy_database(source: Engine, target: Engine, metadata: MetaData) -> dict[str, int]:
    """Copy every table of `metadata` from source to target; return rows per table."""
    options = {"isolation_level": "REPEATABLE READ"} if source.dialect.name == "postgresql" else {}
    with source.connect().execution_options(**options) as src, target.begin() as dst:
        check_target(src, dst, metadata)
        counts = {table.name: copy_table(src, dst, table) for table in metadata.sorted_tables}
        if dst.dialect.name == "postgresql":
            restart_sequences(dst, metadata)
    return counts


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def check_target(src: Connection, dst: Connection, metadata: MetaData) -> None:
    """Raise CopyError unless the target has every table, no rows, and the source's revision."""
    present = set(inspect(dst).get_table_names())
    missing = [t.name for t in metadata.sorted_tables if t.name not in present]
    if missing:
        raise CopyError(f"Target database has no table {missing[0]!r}: "
                        "run `flask --app chatquota db upgrade` on it first.")
    for table in metadata.sorted_tables:
        if dst.execute(select(1).select_from(table).limit(1)).first() is not None:
            raise CopyError(f"Target database is not empty: table {table.name!r} has rows.")
    source_rev, target_rev = _revision(src), _revision(dst)
    if source_rev is not None and source_rev != target_rev:
        raise CopyError(f"Schema versions differ (source {source_rev}, target {target_rev}): "
                        "upgrade both to the same revision first.")


def copy_table(src: Connection, dst: Connection, table) -> int:
    """Copy one table's rows in primary-key order, in batches; return how many."""
    rows = src.execution_options(yield_per=BATCH).execute(
        select(table).order_by(*table.primary_key.columns)
    )
    copied = 0
    for batch in rows.partitions():
        dst.execute(table.insert(), [row._asdict() for row in batch])
        copied += len(batch)
    return copied


def restart_sequences(dst: Connection, metadata: MetaData) -> None:
    """Make each PostgreSQL id sequence continue after the largest copied id."""
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        dst.execute(text(
            f"SELECT setval(pg_get_serial_sequence(:table, :column), "
            f'COALESCE(MAX("{column.name}"), 0) + 1, false) FROM "{table.name}"'
        ), {"table": table.name, "column": column.name})
