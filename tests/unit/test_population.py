"""Anti-cheat rule 11: a log with no history behind it against how people type in general.

Before, a bot whose intervals were log-normal (or a person's, from another
text) but independent of the keys escaped on a new account whenever its test
was too short for rule 5 (fewer than 16 word starts: a 15-second test below
about 64 WPM), and on the player's own account whenever the log was too short
for the profile (rule 10). Rule 11 holds for any length and any account.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import typists
from tests.typing_logs import by_hand
from typogram import rhythm
from typogram.anticheat import Limits, judge, timing_of
from typogram.typing import BigramStat, replay, score

LIMITS = Limits()
TEXT = (
    "people would think about their work while other children found places near the water "
    "because every house had small windows and the night was long enough for stories"
)


def judged(text: str, log: list, seconds: int | None = None):
    run = replay(text, log)
    return judge(run, score(run, seconds=seconds), LIMITS)


def short_test(rng: random.Random) -> str:
    """A 15-second test's words (more than anyone types in 15 s at these speeds)."""
    return typists.words_text(rng, 60)


# -- the layout prior ----------------------------------------------------------------


def test_the_prior_orders_pairs_as_the_studies_do() -> None:
    """Two hands faster than one hand, one finger slowest, a doubled letter and a
    frequent pair fast, a shifted key slow."""
    assert rhythm.prior("fj") < rhythm.prior("fs") < rhythm.prior("fr")  # hands, finger
    assert rhythm.prior("ee") < rhythm.prior("fs")
    assert rhythm.prior("th") < rhythm.prior("tg")  # frequent, same hand either way
    assert rhythm.prior("aB") > rhythm.prior("ab")
    assert rhythm.prior("aé") == rhythm.UNKNOWN_KEY  # not on the layout
    assert rhythm.prior("a!") == rhythm.SHIFTED + rhythm.UNKNOWN_KEY


def test_population_z_of_a_person_is_positive_and_of_a_bot_about_zero() -> None:
    rng = random.Random(3)
    text = " ".join([TEXT] * 2)
    people = [score(replay(text, by_hand(text, seed=s, typo_at=None))) for s in range(6)]
    assert all((rhythm.population_z(r.bigrams)[0] or 0) > 2 for r in people)
    bots = [
        score(replay(text, typists.bot_log(typists.lognormal(90), text, rng))) for _ in range(6)
    ]
    zs = [rhythm.population_z(r.bigrams)[0] for r in bots]
    assert all(z is not None and abs(z) < 3 for z in zs), zs


def test_population_z_needs_enough_intervals_and_some_variety() -> None:
    assert rhythm.population_z({}) == (None, 0)
    few = {"ab": BigramStat(100, 3, 3 * math.log(33), 3 * math.log(33) ** 2)}
    assert rhythm.population_z(few)[0] is None
    # Only pairs across words, or all of one kind: nothing to correlate.
    across = {" a": BigramStat(2000, 20, 20 * 4.6, 20 * 4.6**2)}
    assert rhythm.population_z(across) == (None, 0)
    alike = {"fj": BigramStat(2000, 20, 20 * 4.6, 20 * 4.6**2)}
    assert rhythm.population_z(alike) == (None, 20)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(2, 2000), min_size=20, max_size=120),
    factor=st.integers(2, 5),
)
def test_the_combined_score_ignores_the_pace(gaps: list[int], factor: int) -> None:
    """Rule 11 reads the shape of the timing, not its speed: the same log replayed at
    any whole-number fraction of its pace scores alike."""
    text = (TEXT * 2)[: len(gaps) + 1]
    times = [0, *gaps]
    for i in range(1, len(times)):
        times[i] += times[i - 1]
    log = list(zip(times, text, strict=True))
    slower = [(t * factor, key) for t, key in log]
    one, other = (timing_of(replay(text, x), score(replay(text, x)), LIMITS) for x in (log, slower))
    assert (one.human_z is None) == (other.human_z is None)
    if one.human_z is not None and other.human_z is not None:
        assert one.human_z == pytest.approx(other.human_z, abs=1e-6)
        assert math.isfinite(one.human_z)


# -- hesitations before words --------------------------------------------------------


def paused(text: str, at_word_starts: bool) -> list:
    """Steady 120-180 ms keys with a 900 ms pause into every fourth word, or at as many
    places inside words."""
    rng = random.Random(5)
    log, t, words = [], 0, 0
    for i, ch in enumerate(text):
        if i:
            gap = rng.randint(120, 180)
            start = text[i - 1] == " "
            words += start
            if at_word_starts and start and words % 4 == 0:
                gap += 900
            if not at_word_starts and i % 23 == 11 and ch != " " and text[i - 1] != " ":
                gap += 900
            t += gap
        log.append((t, ch))
    return log


def test_hesitations_before_words_score_and_inside_words_do_not() -> None:
    before = timing_of(
        replay(TEXT, paused(TEXT, True)), score(replay(TEXT, paused(TEXT, True))), LIMITS
    )
    inside = timing_of(
        replay(TEXT, paused(TEXT, False)), score(replay(TEXT, paused(TEXT, False))), LIMITS
    )
    assert before.pause_z is not None and before.pause_z > 3
    assert inside.pause_z is not None and inside.pause_z < 0


# -- rule 11 -------------------------------------------------------------------------


def test_the_floor_grows_with_the_log_and_is_capped() -> None:
    floors = [LIMITS.human_z_floor(n) for n in (10, 60, 100, 200, 400, 4000)]
    assert floors == sorted(floors)
    assert floors[0] < -1 and floors[-1] == LIMITS.human_z_cap


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda wpm: typists.lognormal(wpm), id="log-normal"),
        pytest.param(lambda wpm: typists.lognormal(wpm, pause_rate=0.03), id="with pauses"),
        pytest.param(typists.transplanted, id="human timing, other text"),
    ],
)
def test_a_short_test_by_a_key_blind_bot_is_flagged(make) -> None:
    """15-second tests at 40-60 WPM: too few word starts for rule 5, too short for the
    profile. A statistical test, so a rate over fixed seeds."""
    rng = random.Random(21)
    caught = 0
    for _ in range(20):
        text = short_test(rng)
        log = typists.bot_log(make(rng.uniform(40, 60)), text, rng, until_ms=15_000)
        result, timing = judged(text, log, seconds=15)
        assert timing.structure_z is None  # rule 5 has nothing to say here
        caught += "unlike_human_typing" in result.codes
    assert caught >= 5  # of 20


@pytest.mark.parametrize("seed", range(10))
def test_a_short_test_by_a_person_is_accepted(seed: int) -> None:
    rng = random.Random(seed)
    text = short_test(rng)
    log = by_hand(text, wpm=rng.uniform(40, 60), seed=seed, until_ms=15_000)
    result, timing = judged(text, log, seconds=15)
    assert result.action == "accept", (result.message, timing.evidence())
    assert timing.human_z is not None and timing.human_z > LIMITS.human_z_floor(timing.intervals)


def test_the_users_own_rhythm_joins_the_score_once_there_is_a_profile() -> None:
    """On the player's own account a key-blind bot at the player's pace falls further
    below the floor than on a new account; the player's own log rises above it."""
    rng = random.Random(8)
    person = typists.Typist.draw(rng, wpm=55)
    profile = None
    for _ in range(LIMITS.rhythm_min_results):
        text = typists.words_text(rng, 25)
        profile = rhythm.fold(profile, score(replay(text, person.type(text, rng))))
    assert profile is not None
    text = typists.words_text(rng, 60)
    own = person.type(text, rng, until_ms=15_000)
    bot = typists.bot_log(typists.lognormal(55), text, rng, until_ms=15_000)
    for log, own_rhythm in ((own, True), (bot, False)):
        run = replay(text, log)
        result = score(run, seconds=15)
        alone = judge(run, result, LIMITS)[1]
        known = judge(run, result, LIMITS, profile=profile)[1]
        assert known.rhythm is not None and known.rhythm.pairs_z is not None
        assert alone.human_z is not None and known.human_z is not None
        if own_rhythm:
            assert known.rhythm.pairs_z > 2 and known.human_z > alone.human_z
        else:
            assert abs(known.rhythm.pairs_z) < 2 and known.human_z < alone.human_z
            assert known.human_z < LIMITS.human_z_floor(known.intervals)
