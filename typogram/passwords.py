"""Argon2id password hashing, and the strength every new password must have.

Hashing runs in a thread so the event loop never blocks. Parameters follow
OWASP's Argon2id recommendation (m=19 MiB, t=2, p=1). A bounded semaphore
caps concurrent hashes so a login storm cannot exhaust memory or starve the
loop's executor.

Strength (``require_strong_password``, called wherever a password is set):
OWASP's length rules (8..128 characters, every character allowed, no
composition rules) plus a zxcvbn score of at least ``password_min_score``,
counting the user's own name and e-mail as guessable. zxcvbn's cost grows
quickly with length, so it scores the first ``STRENGTH_PREFIX`` characters:
a long password is judged by its start, which must itself be strong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from typogram.codes import ErrorCode
from typogram.errors import AppError

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1
MIN_LENGTH: Final = 8
MAX_LENGTH: Final = 128
STRENGTH_PREFIX: Final = 64
MIN_SCORE: Final = 3


def password_problem(
    password: str, *, user_inputs: Sequence[str] = (), min_score: int = MIN_SCORE
) -> str | None:
    """Why ``password`` is too weak (one sentence for ``fields``); ``None`` when it is fine.
    Pure and CPU-bound (up to ~25 ms): call ``require_strong_password`` from async code."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    hints = [hint for hint in user_inputs if hint]
    result = zxcvbn(password[:STRENGTH_PREFIX], user_inputs=hints, max_length=STRENGTH_PREFIX)
    if result["score"] >= min_score:
        return None
    feedback = result["feedback"]
    advice = feedback["warning"] or " ".join(feedback["suggestions"]) or "Make it less guessable."
    return f"too easy to guess (strength {result['score']} of 4, needs {min_score}): {advice}"


async def require_strong_password(
    password: str,
    *,
    user_inputs: Sequence[str] = (),
    min_score: int = MIN_SCORE,
    field: str = "password",
) -> None:
    """Refuse a weak new password with ``bad_request`` and the reason in ``fields[field]``.

    Call before hashing, wherever a password is set (register, change, reset);
    ``user_inputs`` are the account's own words (username, e-mail) to count as guessable.
    """
    problem = await asyncio.to_thread(
        password_problem, password, user_inputs=user_inputs, min_score=min_score
    )
    if problem is not None:
        raise AppError(ErrorCode.BAD_REQUEST, f"{field} {problem}", fields={field: problem})


class Passwords:
    def __init__(
        self,
        *,
        memory_kib: int = OWASP_MEMORY_KIB,
        time_cost: int = OWASP_TIME_COST,
        max_concurrent: int = 8,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=OWASP_PARALLELISM,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent)
        # A real hash to verify against when the account does not exist, so
        # response time does not tell whether a login name is registered.
        self._decoy = self._hasher.hash("decoy-password-for-timing")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; a missing hash still costs one verification."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._decoy, password) and bool(stored_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
