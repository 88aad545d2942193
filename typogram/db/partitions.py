"""Monthly RANGE partitions on MySQL: which to add ahead, which to drop past retention.

Rules:

1. A partitioned table is ``PARTITION BY RANGE (created_at)`` (epoch ms).
   Partition ``pYYYYMM`` holds the rows of that UTC month: its bound is
   ``VALUES LESS THAN`` the first millisecond of the next month.
2. A catch-all ``pmax`` (``MAXVALUE``) sits last, so an insert never fails
   for want of a partition; new months are split off it with ``REORGANIZE``.
3. ``plan`` keeps the current month and ``ahead`` months after it present
   (and fills months missed while the job did not run),
   and drops partitions whose every row is older than ``retention_days``.
   ``pmax`` is never dropped.
4. Dropping loses rows: ``typogram partitions`` first moves every month
   past retention to the archive port (``typogram.db.archiver``, read back
   before a row is deleted), so the partitions it drops are already empty.

The planning is pure (``plan``, ``statements``); ``apply`` reads the
current partitions from ``information_schema`` and runs the statements.
SQLite has no partitions: ``apply`` does nothing there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from typogram.db.database import Database
    from typogram.settings import Settings

PARTITIONED_TABLES = frozenset({"test_results", "challenge_attempts", "payments", "email_history"})
MAXVALUE = "pmax"
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    less_than: int | None  # epoch ms; None for MAXVALUE


@dataclass(frozen=True, slots=True)
class Plan:
    add: tuple[Partition, ...] = ()
    drop: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.add and not self.drop


def _month_of(epoch_ms: int) -> tuple[int, int]:
    day = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return day.year, day.month


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def month_start_ms(year: int, month: int) -> int:
    return int(dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp() * 1000)


def monthly(year: int, month: int) -> Partition:
    """The partition for one UTC month."""
    return Partition(f"p{year:04d}{month:02d}", month_start_ms(*_shift(year, month, 1)))


def upcoming(now_ms: int, ahead: int) -> list[Partition]:
    """The current month's partition and the ``ahead`` months after it."""
    year, month = _month_of(now_ms)
    return [monthly(*_shift(year, month, n)) for n in range(ahead + 1)]


def initial(now_ms: int, ahead: int) -> list[Partition]:
    """What a new table starts with: the months from now on, then ``pmax``."""
    return [*upcoming(now_ms, ahead), Partition(MAXVALUE, None)]


def plan(
    existing: Sequence[Partition],
    now_ms: int,
    *,
    ahead: int = 3,
    retention_days: int = 90,
    drop: bool = True,
) -> Plan:
    """The partitions to add (in order) and to drop, given the ones that exist."""
    bounded = [p for p in existing if p.less_than is not None]
    highest = max((p.less_than for p in bounded if p.less_than is not None), default=None)
    year, month = _month_of(now_ms)
    last = _shift(year, month, ahead)
    if highest is not None:
        # RANGE partitions only grow at the top: start at the first month not covered,
        # so a month missed while the job was down still gets its own partition.
        year, month = min(_month_of(highest), (year, month))
    add: list[Partition] = []
    while (year, month) <= last:
        candidate = monthly(year, month)
        if highest is None or (candidate.less_than or 0) > highest:
            add.append(candidate)
        year, month = _shift(year, month, 1)
    cutoff = now_ms - retention_days * DAY_MS
    expired = tuple(
        p.name for p in bounded if p.less_than is not None and p.less_than <= cutoff and drop
    )
    # Every expired month ends before now, and now's month is always present or added,
    # so the table never loses its last partition (MySQL refuses that).
    return Plan(tuple(add), expired)


def _definition(partition: Partition) -> str:
    bound = "MAXVALUE" if partition.less_than is None else f"({partition.less_than})"
    return f"PARTITION {partition.name} VALUES LESS THAN {bound}"


def statements(table: str, plan: Plan, existing: Iterable[Partition]) -> list[str]:
    """The ``ALTER TABLE`` statements carrying out ``plan``."""
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"{table!r} is not a partitioned table")
    names = {p.name for p in existing}
    sql: list[str] = []
    if plan.add:
        parts = ", ".join(_definition(p) for p in plan.add)
        if MAXVALUE in names:
            sql.append(
                f"ALTER TABLE {table} REORGANIZE PARTITION {MAXVALUE} INTO "
                f"({parts}, {_definition(Partition(MAXVALUE, None))})"
            )
        else:
            sql.append(f"ALTER TABLE {table} ADD PARTITION ({parts})")
    if plan.drop:
        sql.append(f"ALTER TABLE {table} DROP PARTITION {', '.join(plan.drop)}")
    return sql


def partition_clause(partitions: Iterable[Partition]) -> str:
    """``PARTITION BY RANGE (created_at) (...)`` for a new table."""
    return "PARTITION BY RANGE (created_at) (" + ", ".join(map(_definition, partitions)) + ")"


async def existing(db: Database, table: str) -> list[Partition]:
    async with db.read(primary=True) as conn:
        rows = await conn.execute(
            text(
                "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM information_schema.PARTITIONS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table "
                "AND PARTITION_NAME IS NOT NULL ORDER BY PARTITION_ORDINAL_POSITION"
            ),
            {"table": table},
        )
        return [
            Partition(str(name), None if str(bound).upper() == "MAXVALUE" else int(bound))
            for name, bound in rows
        ]


async def apply(
    db: Database,
    now_ms: int,
    *,
    table: str = "test_results",
    ahead: int = 3,
    retention_days: int = 90,
    drop: bool = True,
    dry_run: bool = False,
) -> list[str]:
    """Bring ``table``'s partitions in line with the plan; returns the statements (run or not)."""
    if db.dialect != "mysql":
        return []
    current = await existing(db, table)
    if not current:
        return []  # not partitioned (created before partitioning, or by hand): leave it
    todo = statements(
        table, plan(current, now_ms, ahead=ahead, retention_days=retention_days, drop=drop), current
    )
    if not dry_run:
        for statement in todo:
            async with db.write() as conn:
                await conn.execute(text(statement))
    return todo


def retention_days(settings: Settings, table: str) -> int:
    """How long a table's rows stay: payments are money records (``payments_retention_days``),
    the e-mail history has its own (``email_retention_days``)."""
    if table == "payments":
        return settings.payments_retention_days
    if table == "email_history":
        return settings.email_retention_days
    return settings.typing_retention_days


async def maintain(
    db: Database, settings: Settings, now_ms: int, *, drop: bool = True, dry_run: bool = False
) -> dict[str, list[str]]:
    """Every partitioned table, with the ``typing_partitions_ahead``/``_retention_days`` window.

    What the ``typogram partitions`` command calls; returns the statements per table.
    """
    return {
        table: await apply(
            db,
            now_ms,
            table=table,
            ahead=settings.typing_partitions_ahead,
            retention_days=retention_days(settings, table),
            drop=drop,
            dry_run=dry_run,
        )
        for table in sorted(PARTITIONED_TABLES)
    }
