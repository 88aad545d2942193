"""``typogram.rhythm`` and anti-cheat rule 10: a result against its typist's own rhythm.

Before, a bot on a player's account whose timing ignored the keys (log-normal
intervals at the player's own pace) passed about one time in five, and a
player's own log replayed 1.5 times as fast passed whenever it stayed under
the history rule's ratio; both are measured against the player's profile now.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bench import typists
from typogram import rhythm
from typogram.anticheat import Limits, judge
from typogram.typing import Result, replay, score

LIMITS = Limits()


def scored(text: str, log: list) -> tuple[object, Result]:
    run = replay(text, log)
    return run, score(run)


def profile_of(person: typists.Typist, rng: random.Random, tests: int = 10) -> rhythm.Profile:
    profile = None
    for _ in range(tests):
        text = typists.words_text(rng, 25)
        profile = rhythm.fold(profile, scored(text, person.type(text, rng))[1])
    assert profile is not None
    return profile


def test_a_typists_own_log_follows_their_profile_and_a_bots_does_not() -> None:
    rng = random.Random(7)
    person = typists.Typist.draw(rng, wpm=70)
    profile = profile_of(person, rng)
    assert profile.results == 10 and len(profile.pairs) <= rhythm.MAX_PAIRS
    text = typists.words_text(rng, 50)
    own = rhythm.compare(profile, scored(text, person.type(text, rng))[1])
    assert own.pairs_z is not None and own.pairs_z > 3 and own.shared >= rhythm.MIN_SHARED
    assert own.pace_z is not None and abs(own.pace_z) < 3
    detached = [
        rhythm.compare(profile, scored(text, typists.bot_log(typists.lognormal(70), text, rng))[1])
        for _ in range(20)
    ]
    zs = [d.pairs_z for d in detached if d.pairs_z is not None]
    assert len(zs) == 20 and sum(z < LIMITS.min_rhythm_z for z in zs) >= 15


def test_judge_flags_a_bot_unlike_the_players_rhythm_and_a_log_replayed_faster() -> None:
    rng = random.Random(3)
    person = typists.Typist.draw(rng, wpm=60)
    profile = profile_of(person, rng)
    text = typists.words_text(rng, 50)
    # A bot at the player's pace that the checks without a profile let through.
    for seed in range(400):
        log = typists.bot_log(typists.lognormal(62), text, random.Random(seed))
        run, result = scored(text, log)
        if judge(run, result, LIMITS)[0].action == "accept":  # type: ignore[arg-type]
            break
    else:
        raise AssertionError("no bot log passed the checks that do not know the player")
    verdict, timing = judge(run, result, LIMITS, profile=profile)  # type: ignore[arg-type]
    assert "unlike_own_rhythm" in verdict.codes and verdict.action == "flag"
    assert timing.evidence()["rhythm_z"] is not None

    own = person.type(text, rng)
    run, result = scored(text, own)
    assert judge(run, result, LIMITS, profile=profile)[0].action == "accept"  # type: ignore[arg-type]
    faster = typists.scaled(own, 0.62)  # 1.6 times as fast: under 1.35 x best + 5? no matter
    run, result = scored(text, faster)
    codes = judge(run, result, LIMITS, profile=profile)[0].codes  # type: ignore[arg-type]
    assert "faster_than_own_pace" in codes


def test_a_profile_with_too_few_results_judges_nothing() -> None:
    rng = random.Random(5)
    person = typists.Typist.draw(rng, wpm=60)
    young = profile_of(person, rng, tests=LIMITS.rhythm_min_results - 1)
    text = typists.words_text(rng, 50)
    run, result = scored(text, typists.bot_log(typists.lognormal(60), text, rng))
    _, timing = judge(run, result, LIMITS, profile=young)  # type: ignore[arg-type]
    assert timing.rhythm is None


def test_the_profile_survives_bytes_and_foreign_bytes_are_no_profile() -> None:
    rng = random.Random(1)
    profile = profile_of(typists.Typist.draw(rng), rng, tests=3)
    assert rhythm.decode(rhythm.encode(profile)) == profile
    for raw in (None, b"", b"{", b'{"results": "x"}', b'[1, 2, 3, {"ab": 7}]'):
        assert rhythm.decode(raw) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60_000), st.sampled_from([*"abc de", "Backspace"])),
                max_size=120))  # fmt: skip
def test_any_log_folds_and_compares_without_error(log: list[tuple[int, str]]) -> None:
    text = "abc de abc de abc"
    run = replay(text, sorted(log))
    result = score(run)
    profile = rhythm.fold(rhythm.fold(None, result), result)
    found = rhythm.compare(profile, result)
    assert found.pairs_z is None or found.pairs_z == found.pairs_z  # never NaN
    assert profile.pace_sd >= rhythm.MIN_PACE_SD


def test_a_typists_own_rhythm_outweighs_one_tests_missing_word_starts() -> None:
    """A slow typist whose word starts are barely slower than the inside of words is
    flagged ``no_timing_structure`` on a new account; on their own account, where the
    log follows their own letter pairs clearly, it is accepted."""
    rng = random.Random(232)
    person = typists.Typist.draw(rng, wpm=35)
    text = typists.words_text(rng, 25)
    run, result = scored(text, person.type(text, rng))
    assert judge(run, result, LIMITS)[0].codes == ("no_timing_structure",)  # type: ignore[arg-type]
    profile = None
    for _ in range(10):
        earlier = typists.words_text(rng, 25)
        profile = rhythm.fold(profile, scored(earlier, person.type(earlier, rng))[1])
    verdict, timing = judge(run, result, LIMITS, profile=profile)  # type: ignore[arg-type]
    assert verdict.action == "accept"
    assert timing.rhythm is not None and timing.rhythm.pairs_z is not None
    assert timing.rhythm.pairs_z >= LIMITS.own_rhythm_clears_z
