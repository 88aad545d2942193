"""``typogram.passwords``: the strength rules every new password meets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typogram.errors import AppError
from typogram.passwords import MAX_LENGTH, password_problem, require_strong_password


@pytest.mark.parametrize(
    "password", ["password", "12345678", " " * 8, "\x00" * 8, "qwertyuiop", "aaaaaaaaaaaa"]
)
def test_common_and_repetitive_passwords_are_too_weak(password: str) -> None:
    problem = password_problem(password)
    assert problem is not None and "guess" in problem


def test_the_users_own_name_counts_as_guessable() -> None:
    assert password_problem("quokkaplum77") is None
    assert password_problem("quokkaplum77", user_inputs=["quokkaplum"]) is not None


def test_length_rules_are_named() -> None:
    assert password_problem("Ab1!") == "must be at least 8 characters"
    assert password_problem("x" * (MAX_LENGTH + 1)) == f"must be at most {MAX_LENGTH} characters"


@settings(max_examples=30, deadline=None)
@given(st.text(st.characters(codec="utf-8"), min_size=0, max_size=MAX_LENGTH + 20))
def test_any_text_gets_an_answer_never_an_error(password: str) -> None:
    problem = password_problem(password)
    assert problem is None or isinstance(problem, str)


async def test_the_async_check_names_the_field() -> None:
    with pytest.raises(AppError) as caught:
        await require_strong_password("password", field="new_password")
    assert caught.value.http_status == 400
    assert set(caught.value.fields or {}) == {"new_password"}
    await require_strong_password("correct horse battery staple")
