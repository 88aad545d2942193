"""Which failures mean "a backend is unreachable for now" (answer 503), not a bug (500).

A request that meets one of these is not the client's fault and not a
defect: the database is restarting, Redis is failing over, the broker is
away. REST answers ``503 unavailable`` with ``Retry-After`` (``rest.middleware``)
and the client retries; everything else stays a ``500``.

The rules, in order:

1. ``BackendUnavailable`` names its backend.
2. Redis: redis-py's ``ConnectionError`` (``MasterNotFoundError`` while the
   sentinels have no master), ``TimeoutError``, ``BusyLoadingError``,
   ``ReadOnlyError`` (a demoted master) and ``MasterDownError`` (a replica cut off
   from its master); the lean connections raise the same (``redis_wire.reply_error``).
3. The database: SQLAlchemy's pool timeout, a disconnect it detected, and
   MySQL/MariaDB client errors that mean the server is away or going
   (``_MYSQL_GONE``); SQLite's "database is locked".
4. Kafka: the errors aiokafka marks retriable (no broker, node not ready,
   leader moving, connection lost…) and its timeout.
5. The standard library's ``ConnectionError`` and ``TimeoutError`` (the lean
   Redis connections and ``asyncio.timeout`` raise these): "a backend".
6. An exception group is an outage when every member is; a wrapped
   exception (``raise … from exc``) is judged by its cause.
"""

from __future__ import annotations

from typing import Final

import redis.exceptions as redis_errors
import sqlalchemy.exc as sql_errors
from aiokafka import errors as kafka_errors

from typogram.errors import BackendUnavailable

# Client error numbers: 2002/2003 cannot connect, 2006 gone away, 2013 lost
# during a query, 1053 server shutdown, 1927 connection killed, 2055 lost at
# the reading stage, 1290 read-only (a replica promoted without a writer yet).
_MYSQL_GONE: Final = frozenset({1053, 1290, 1927, 2002, 2003, 2006, 2013, 2055})

_REDIS: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.MasterDownError,
)
_MAX_DEPTH: Final = 8  # causes followed at most (chains are short; cycles are possible)


def unavailable_backend(exc: BaseException) -> str | None:
    """The backend an exception says is unreachable (``redis``, ``database``,
    ``kafka``, ``backend``), or ``None`` when it is some other failure."""
    return _judge(exc, _MAX_DEPTH)


def _judge(exc: BaseException, depth: int) -> str | None:
    if isinstance(exc, BaseExceptionGroup):
        found = [_judge(member, depth - 1) for member in exc.exceptions]
        return found[0] if found and None not in found else None
    own = _own(exc)
    if own is not None or depth <= 0:
        return own
    cause = exc.__cause__
    return _judge(cause, depth - 1) if cause is not None else None


def _own(exc: BaseException) -> str | None:
    if isinstance(exc, BackendUnavailable):
        return exc.backend
    if isinstance(exc, _REDIS):
        return "redis"
    if isinstance(exc, sql_errors.TimeoutError | sql_errors.DisconnectionError):
        return "database"
    if isinstance(exc, sql_errors.DBAPIError):
        return "database" if exc.connection_invalidated or _database_gone(exc.orig) else None
    if isinstance(exc, kafka_errors.KafkaTimeoutError) or (
        isinstance(exc, kafka_errors.KafkaError) and exc.retriable
    ):
        return "kafka"
    if isinstance(exc, ConnectionError | TimeoutError):
        return "backend"
    return None


def _database_gone(orig: BaseException | None) -> bool:
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _MYSQL_GONE
    if orig is not None and "database is locked" in str(orig):
        return True  # SQLite: a writer held the file past busy_timeout
    return isinstance(orig, ConnectionError | TimeoutError)
