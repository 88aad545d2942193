"""Which failures are outages (503) and how REST answers them: no I/O."""

from __future__ import annotations

import asyncio

import hiredis
import httpx
import pymysql
import pytest
import redis.exceptions as redis_errors
import sqlalchemy.exc as sql_errors
from aiokafka import errors as kafka_errors
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.sentinel import MasterNotFoundError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rest.middleware import OutageMiddleware
from typogram.adapters.redis_wire import reply_error
from typogram.errors import AppError, BackendUnavailable
from typogram.outages import unavailable_backend


def _db(orig: BaseException, *, invalidated: bool = False) -> sql_errors.DBAPIError:
    return sql_errors.OperationalError("SELECT 1", {}, orig, connection_invalidated=invalidated)


def _caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "backend"),
    [
        (BackendUnavailable("kafka", "127.0.0.1:9092", "refused"), "kafka"),
        (MasterNotFoundError("No master found for 'typogram'"), "redis"),
        (redis_errors.ConnectionError("Connection refused"), "redis"),
        (redis_errors.TimeoutError("Timeout reading from socket"), "redis"),
        (redis_errors.ReadOnlyError("You can't write against a read only replica."), "redis"),
        (redis_errors.BusyLoadingError("Redis is loading the dataset in memory"), "redis"),
        (_db(pymysql.err.OperationalError(2003, "Can't connect to MySQL server")), "database"),
        (_db(pymysql.err.OperationalError(2013, "Lost connection during query")), "database"),
        (_db(pymysql.err.OperationalError(1053, "Server shutdown in progress")), "database"),
        (_db(pymysql.err.OperationalError(1290, "--read-only")), "database"),
        (_db(Exception("whatever"), invalidated=True), "database"),
        (_db(ConnectionResetError("reset")), "database"),
        (_db(Exception("database is locked")), "database"),
        (sql_errors.TimeoutError("QueuePool limit reached"), "database"),
        (kafka_errors.KafkaConnectionError("broker down"), "kafka"),
        (kafka_errors.KafkaTimeoutError(), "kafka"),
        (kafka_errors.NoBrokersAvailable(), "kafka"),
        (kafka_errors.NodeNotReadyError("node 111"), "kafka"),
        (kafka_errors.NotLeaderForPartitionError(), "kafka"),
        (ConnectionError("Redis connection lost: closed"), "backend"),
        (ConnectionRefusedError(111, "refused"), "backend"),
        (TimeoutError(), "backend"),
        (_caused(RuntimeError("could not store"), MasterNotFoundError("none")), "redis"),
        (ExceptionGroup("both", [TimeoutError(), redis_errors.ConnectionError()]), "backend"),
    ],
)
def test_an_unreachable_backend_is_named(exc: BaseException, backend: str) -> None:
    assert unavailable_backend(exc) == backend


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("k"),
        AppError.__new__(AppError),
        redis_errors.ResponseError("WRONGTYPE Operation against a key"),
        redis_errors.DataError("bad argument"),
        sql_errors.IntegrityError("INSERT", {}, pymysql.err.IntegrityError(1062, "Duplicate")),
        _db(pymysql.err.OperationalError(1054, "Unknown column")),
        _db(pymysql.err.ProgrammingError(1064, "syntax")),
        kafka_errors.MessageSizeTooLargeError(),
        ExceptionGroup("mixed", [TimeoutError(), ValueError("bug")]),
        _caused(ValueError("bug"), ValueError("another")),
    ],
)
def test_bugs_and_refusals_are_not_outages(exc: BaseException) -> None:
    assert unavailable_backend(exc) is None


_BUGS = st.sampled_from([ValueError, KeyError, TypeError, AssertionError, RuntimeError])


@st.composite
def _bug_chains(draw: st.DrawFn) -> BaseException:
    """Bugs only, wrapped in groups and causes, with a cycle now and then."""
    exc: BaseException = draw(_BUGS)("bug")
    for _ in range(draw(st.integers(0, 12))):
        outer: BaseException = draw(_BUGS)("outer")
        if draw(st.booleans()):
            outer = ExceptionGroup("group", [exc, draw(_BUGS)("sibling")])
        outer.__cause__ = exc
        if draw(st.booleans()):
            exc.__cause__ = outer  # a cycle: judged within a bounded depth
        exc = outer
    return exc


@given(_bug_chains())
def test_no_chain_of_bugs_is_an_outage_and_judging_ends(exc: BaseException) -> None:
    assert unavailable_backend(exc) is None


# -- the middleware ------------------------------------------------------------------


class _Raising:
    """A middleware that fails before the route, as the rate limits do when Redis is away."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/limited":
            raise redis_errors.ConnectionError("Connection refused")
        await self.app(scope, receive, send)


async def _failing(request: Request) -> Response:
    raise {
        "/db": _db(pymysql.err.OperationalError(2003, "Can't connect")),
        "/bug": ValueError("a bug"),
    }[request.url.path]


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _half_sent(request: Request) -> Response:
    async def body():  # type: ignore[no-untyped-def]
        yield b"first"
        await asyncio.sleep(0)
        raise TimeoutError

    return StreamingResponse(body())


def _client() -> httpx.AsyncClient:
    app = Starlette(
        routes=[
            Route("/db", _failing),
            Route("/bug", _failing),
            Route("/limited", _ok),
            Route("/ok", _ok),
            Route("/half", _half_sent),
        ],
        middleware=[Middleware(OutageMiddleware, retry_after_s=3), Middleware(_Raising)],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize(("path", "backend"), [("/db", "database"), ("/limited", "redis")])
async def test_an_outage_is_a_json_503_with_retry_after(path: str, backend: str) -> None:
    async with _client() as client:
        response = await client.get(path)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {"code": "unavailable", "message": f"{backend} is unavailable for now; retry"}
    }


async def test_a_bug_stays_a_500_and_a_started_response_is_not_rewritten() -> None:
    async with _client() as client:
        assert (await client.get("/ok")).status_code == 200
        assert (await client.get("/bug")).status_code == 500
        half = await client.get("/half")  # cut short; nothing was sent after it
    assert (half.status_code, half.content) == (200, b"first")


async def test_an_outage_logs_one_line_a_second_not_one_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _client() as client:
        with caplog.at_level("WARNING", logger="typogram.rest"):
            for _ in range(20):
                assert (await client.get("/db")).status_code == 503
    lines = [r for r in caplog.records if r.getMessage() == "backend unavailable"]
    assert len(lines) == 1 and lines[0].__dict__["backend"] == "database"


@pytest.mark.parametrize(
    ("reply", "kind", "backend"),
    [
        ("LOADING Redis is loading the dataset in memory", redis_errors.BusyLoadingError, "redis"),
        ("READONLY a read only replica", redis_errors.ReadOnlyError, "redis"),
        ("MASTERDOWN Link with MASTER is down", redis_errors.MasterDownError, "redis"),
        ("NOSCRIPT No matching script.", redis_errors.NoScriptError, None),
        ("OOM command not allowed", redis_errors.OutOfMemoryError, None),
        ("WRONGTYPE Operation against a key", redis_errors.ResponseError, None),
        ("LOADINGX not a code we know", redis_errors.ResponseError, None),
    ],
)
def test_error_replies_on_the_lean_connections_are_judged_as_redis_py_would(
    reply: str, kind: type[BaseException], backend: str | None
) -> None:
    """A Redis restarted with its append-only file answers LOADING for a moment:
    on the lean connections that must be an outage (``unavailable``), not a bug."""
    error = reply_error(hiredis.ReplyError(reply))
    assert type(error) is kind and str(error) == reply
    assert unavailable_backend(error) == backend
