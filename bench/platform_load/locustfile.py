"""A day of Typogram in Locust users: typists on REST, chatters on the gateway.

Run by ``python -m bench.platform_load`` (which starts the platform and
seeds the accounts), or by hand against a running platform::

    BENCH_ACCOUNTS=accounts.txt BENCH_WS_URL=ws://127.0.0.1:8765/ws \\
        locust -f bench/platform_load/locustfile.py --headless -u 100 -r 50 -t 60s \\
        --host http://127.0.0.1:8000

``BENCH_ACCOUNTS`` names a file of ``username token password`` lines
(existing users with a fresh access token, so starting a user costs no
login). The mix (``MIX``) follows the strategy's day: 2 M tests a day, each a
test load and a result submission, are 40 % of 10 M API requests; the rest
is profile and leaderboard reads, history, courses, stats, the daily
challenge, achievements, the blog and logins. A typist waits 0.5-1.5 s
between actions (about one action a second). A chatter sits in one of
``CHAT_ROOMS`` rooms and says something every 2-6 s; its ``chat.send`` round
trip (to the ``chat.sent`` reply) is reported as the request ``WS chat.send``.
A racer (a signed-in account; the strategy's 30 % of connected users
racing: typists 4, chatters 1, racers 2) queues (``match.join``), waits for
``match.found`` (reported as ``WS match.found``, from the join), types the
race as progress reports twice a second from a human-like log, finishes
(``WS race.finish``, to the ``race.finished`` reply), waits for
``race.result`` and queues again. How many progress reports racers sent is
written to ``BENCH_COUNTS`` (a JSON file) when the test stops.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import threading
import time
from typing import Any

import orjson
from locust import FastHttpUser, User, between, events, task
from websockets.sync.client import ClientConnection, connect

from tests.integration.test_races import position
from tests.typing_logs import by_hand

CHAT_ROOMS = 20
# Logins are Argon2id at its production cost: ~20 ms of CPU each, most of a REST
# process's CPU at the day's share. ``BENCH_LOGIN_WEIGHT=0`` measures the rest alone.
LOGIN_WEIGHT = int(os.environ.get("BENCH_LOGIN_WEIGHT", "2"))
_accounts: list[tuple[str, str, str]] = []
_next_account = itertools.count()
_lock = threading.Lock()
_sent: dict[str, int] = {"race.progress": 0}
RACE_JOIN = {"mode": "race", "difficulty": "easy", "lang": "en"}
MATCH_WAIT_S = 120.0


@events.init.add_listener  # type: ignore[untyped-decorator]
def _load_accounts(**_: Any) -> None:
    path = os.environ.get("BENCH_ACCOUNTS", "")
    if path:
        with open(path) as lines:
            for line in lines:
                name, token, password = line.rstrip("\n").split(" ", 2)
                _accounts.append((name, token, password))


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _write_counts(**_: Any) -> None:
    if path := os.environ.get("BENCH_COUNTS", ""):
        with open(path, "wb") as out:
            out.write(orjson.dumps(_sent))


def _account() -> tuple[str, str, str]:
    with _lock:
        return _accounts[next(_next_account) % len(_accounts)]


class Typist(FastHttpUser):
    """One signed-in person using the site: the REST share of the day."""

    weight = 4
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.username, token, self.password = _account()
        self.auth = {"Authorization": f"Bearer {token}"}

    @task(LOGIN_WEIGHT) if LOGIN_WEIGHT > 0 else (lambda f: f)  # type: ignore[untyped-decorator]
    def login(self) -> None:
        with self.client.post(
            "/api/v1/auth/login",
            json={"login": self.username, "password": self.password},
            name="POST /auth/login",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"login: {response.status_code}")
                return
            self.auth = {"Authorization": f"Bearer {response.json()['access_token']}"}

    @task(20)
    def typing_test(self) -> None:
        test = self.client.get(
            "/api/v1/tests/new?mode=words&count=25", headers=self.auth, name="GET /tests/new"
        )
        if test.status_code != 200:
            return
        body = test.json()
        log = by_hand(body["text"], wpm=random.uniform(40, 110), seed=random.getrandbits(32))
        self.client.post(
            "/api/v1/results",
            json={"test_id": body["test_id"], "keystrokes": log},
            headers=self.auth,
            name="POST /results",
        )

    @task(15)
    def profile(self) -> None:
        self.client.get("/api/v1/users/me", headers=self.auth, name="GET /users/me")

    @task(15)
    def leaderboard(self) -> None:
        board = random.choice(("words-25-en", "time-15-en", "time-60-en"))
        window = random.choice(("daily", "weekly", "alltime"))
        self.client.get(
            f"/api/v1/leaderboards/{board}?window={window}",
            headers=self.auth,
            name="GET /leaderboards/{board}",
        )

    @task(8)
    def history(self) -> None:
        self.client.get("/api/v1/results/me?limit=20", headers=self.auth, name="GET /results/me")

    @task(7)
    def courses(self) -> None:
        self.client.get("/api/v1/courses", headers=self.auth, name="GET /courses")

    @task(5)
    def stats(self) -> None:
        self.client.get(
            f"/api/v1/users/{self.username}/stats", headers=self.auth, name="GET /users/{u}/stats"
        )

    @task(3)
    def challenge(self) -> None:
        self.client.get("/api/v1/challenges/today", headers=self.auth, name="GET /challenges/today")

    @task(2)
    def achievements(self) -> None:
        self.client.get("/api/v1/achievements/me", headers=self.auth, name="GET /achievements/me")

    @task(3)
    def blog(self) -> None:
        self.client.get("/api/v1/blog/posts", name="GET /blog/posts")


class Socket(User):
    """A WebSocket client of the gateway: hello, then requests and the pushes between."""

    abstract = True

    def connect(self, token: str) -> None:
        url = os.environ.get("BENCH_WS_URL", "ws://127.0.0.1:8765/ws")
        self._connection = connect(url, open_timeout=10, compression=None)
        self.ws: ClientConnection = self._connection.__enter__()
        self.ids = itertools.count(1)
        self.ws.send(orjson.dumps({"t": "hello", "d": {"token": token}}).decode())
        self._until("welcome")

    def on_stop(self) -> None:
        self._connection.__exit__(None, None, None)

    def _until(self, kind: str, frame_id: int | None = None, wait_s: float = 10) -> dict[str, Any]:
        """Read (dropping other traffic) until the frame ``kind`` or the reply to ``frame_id``."""
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            frame = orjson.loads(self.ws.recv(timeout=left))
            if frame.get("t") == "error" and frame.get("re") == frame_id:
                raise RuntimeError(frame["d"])
            if frame.get("t") == kind if frame_id is None else frame.get("re") == frame_id:
                return dict(frame)
        raise TimeoutError(kind)

    def _ask(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        frame_id = next(self.ids)
        self.ws.send(orjson.dumps({"t": kind, "id": frame_id, "d": data}).decode())
        return self._until(kind, frame_id)

    def _timed(self, name: str, work: Any) -> Any:
        """Run ``work()``; report its time to Locust as the request ``WS name``."""
        started = time.perf_counter()
        error: Exception | None = None
        result = None
        try:
            result = work()
        except Exception as exc:  # reported to Locust as a failure
            error = exc
        events.request.fire(  # type: ignore[no-untyped-call]
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
        )
        if error is not None:
            raise error
        return result


class Chatter(Socket):
    """A guest in a chat room on the gateway, talking now and then."""

    weight = 1
    wait_time = between(2, 6)

    def on_start(self) -> None:
        host = self.host or "http://127.0.0.1:8000"
        import urllib.request

        request = urllib.request.Request(
            f"{host}/api/v1/auth/guest", data=b"{}", method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as answer:
            token = orjson.loads(answer.read())["access_token"]
        self.connect(token)
        self.room = f"load-{random.randrange(CHAT_ROOMS)}"
        self._ask("room.join", {"room": self.room})

    @task
    def say(self) -> None:
        with contextlib.suppress(Exception):  # counted as a failure by _timed
            self._timed(
                "chat.send",
                lambda: self._ask(
                    "chat.send", {"room": self.room, "text": f"hello {random.random():.6f}"}
                ),
            )


class Racer(Socket):
    """A signed-in player racing in public races, one after another."""

    weight = 2
    wait_time = between(1, 3)

    def on_start(self) -> None:
        _, token, _ = _account()
        self.connect(token)

    @task
    def race(self) -> None:
        with contextlib.suppress(Exception):  # counted as a failure by _timed
            found = self._timed("match.found", self._matched)
            race, text, start_at = found["race"], found["text"], found["start_at"]
            log = by_hand(text, wpm=random.uniform(40, 110), seed=random.getrandbits(32))
            self._type(race, text, start_at, log)
            self._timed(
                "race.finish", lambda: self._ask("race.finish", {"race": race, "keystrokes": log})
            )
            self._until_result(race)

    def _matched(self) -> dict[str, Any]:
        """Queue until matched. With few racers a lone ticket waits for others' races to
        end (a race runs up to a minute here); given up after ``MATCH_WAIT_S``, cancelled."""
        ticket = self._ask("match.join", RACE_JOIN)["d"]["ticket"]
        try:
            return dict(self._until("match.found", wait_s=MATCH_WAIT_S)["d"])
        except TimeoutError:
            with contextlib.suppress(Exception):  # matched meanwhile: not_found
                self._ask("match.cancel", {"ticket": ticket})
            raise

    def _type(self, race: str, text: str, start_at: int, log: list[list[Any]]) -> None:
        """Progress twice a second as the log plays out from ``start_at`` (epoch ms), reading
        (and dropping) the race's snapshots meanwhile."""
        end_ms = log[-1][0]
        while (elapsed := time.time() * 1000 - start_at) <= end_ms + 500:
            if elapsed >= 0:
                pos = position(log, elapsed, text)
                self.ws.send(
                    orjson.dumps(
                        {"t": "race.progress", "d": {"race": race, "pos": pos, "errors": 0}}
                    ).decode()
                )
                _sent["race.progress"] += 1
            wake = time.monotonic() + 0.5
            while (left := wake - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    self.ws.recv(timeout=left)

    def _until_result(self, race: str) -> None:
        deadline = time.monotonic() + 200  # a race ends at its time limit at the latest
        while time.monotonic() < deadline:
            frame = orjson.loads(self.ws.recv(timeout=deadline - time.monotonic()))
            if frame.get("t") == "race.result" and frame["d"].get("race") == race:
                return
