"""Achievement rules as data (typogram.achievements)."""

from __future__ import annotations

from typogram import achievements as rules


def ids(facts: rules.Facts) -> list[str]:
    return [a.id for a in rules.earned(facts)]


def test_there_are_at_least_a_dozen_with_unique_ids() -> None:
    assert len(rules.ACHIEVEMENTS) >= 12 and len(rules.BY_ID) == len(rules.ACHIEVEMENTS)


def test_first_test_and_wpm_milestones() -> None:
    facts = rules.observe(rules.Facts(), rules.TestDone(wpm=85.0, accuracy=90.0, lang="en"))
    assert ids(facts) == ["first-test", "wpm-40", "wpm-60", "wpm-80"]
    slower = rules.observe(facts, rules.TestDone(wpm=30.0, accuracy=90.0, lang="en"))
    assert slower.best_wpm == 85.0 and slower.tests == 2  # bests never go backwards


def test_accuracy_streak_breaks_but_the_best_run_stays() -> None:
    facts = rules.Facts()
    for accuracy in (96, 97, 99, 95, 98, 80, 99):
        facts = rules.observe(facts, rules.TestDone(50.0, accuracy, "en"))
    assert facts.accuracy_run == 1 and facts.accuracy_streak == 5
    assert "accuracy-5" in ids(facts) and "accuracy-20" not in ids(facts)


def test_languages_races_and_challenge_streaks() -> None:
    facts = rules.Facts()
    for lang in ("en", "de", "en", "fr"):
        facts = rules.observe(facts, rules.TestDone(20.0, 50.0, lang))
    assert facts.langs == ("de", "en", "fr") and "languages-3" in ids(facts)
    facts = rules.observe(facts, rules.RaceWon())
    facts = rules.observe(facts, rules.ChallengeStreak(7))
    facts = rules.observe(facts, rules.ChallengeStreak(2))
    assert facts.challenge_streak == 7 and facts.race_wins == 1
    assert {"race-win", "challenge-3", "challenge-7"} <= set(ids(facts))
    assert rules.Facts.from_json(facts.to_json() | {"unknown": 1}) == facts


def test_progress_lists_only_locked_ones() -> None:
    facts = rules.observe(rules.Facts(), rules.TestDone(50.0, 99.0, "en"))
    unlocked = set(ids(facts))
    progress = {p["id"]: p for p in rules.progress(facts, unlocked)}
    assert not unlocked & set(progress)
    assert progress["wpm-100"]["ratio"] == 0.5 and progress["tests-10"]["current"] == 1
