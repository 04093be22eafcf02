"""Slicing a query into pages, and the username search shared by the lists."""

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Page:
    """One slice of a list, and how many items the whole list has."""

    items: list
    total: int


def paginate(
    session: Session, stmt: Select, offset: int, limit: int, rows: bool = False,
    count: Select | None = None,
) -> Page:
    """Return the items [offset, offset + limit) of an ordered query, and the count.

    Items are the first column's values (ORM objects), or whole rows with `rows`.
    `count`, if given, is a cheaper statement with as many rows as `stmt`.
    """
    counted = stmt.order_by(None) if count is None else count
    total = session.scalar(select(func.count()).select_from(counted.subquery()))
    if offset >= total:  # nothing there; and an offset past 2**63 would overflow the driver
        return Page([], total)
    result = session.execute(stmt.offset(offset).limit(limit))
    return Page(result.all() if rows else list(result.scalars()), total)


def contains(column, text: str):
    """Return a case-insensitive "column contains text" condition (no wildcards)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped.lower()}%", escape="\\")
