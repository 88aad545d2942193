"""Achievements as data, and the pure rules that count towards them.

Rules:

1. A user's progress is a small set of *facts* (``Facts``): tests taken,
   best WPM, the current and best run of tests at ``ACCURATE`` % or more,
   the best daily-challenge streak, race wins, languages tried, courses
   completed.
2. ``observe(facts, fact)`` folds one fact from an event into them and
   returns new facts; it never goes backwards (bests stay bests).
3. An achievement is a name, a fact and a threshold (``ACHIEVEMENTS``): it
   is unlocked once its fact reaches the threshold, and stays unlocked.
   Whether it was unlocked *before* is the store's business (a unique
   ``(user_id, achievement_id)``), so a repeated event unlocks nothing new.
4. Flagged results are never observed (the pipeline drops them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal

Metric = Literal[
    "tests", "best_wpm", "accuracy_streak", "challenge_streak", "race_wins", "languages", "courses"
]
ACCURATE: Final = 95.0  # accuracy that keeps an accuracy streak going


@dataclass(frozen=True, slots=True)
class Achievement:
    id: str
    title: str
    description: str
    metric: Metric
    threshold: float


ACHIEVEMENTS: Final[tuple[Achievement, ...]] = (
    Achievement("first-test", "First steps", "Finish your first test", "tests", 1),
    Achievement("tests-10", "Warming up", "Finish 10 tests", "tests", 10),
    Achievement("tests-100", "Dedicated", "Finish 100 tests", "tests", 100),
    Achievement("wpm-40", "Steady", "Reach 40 WPM", "best_wpm", 40),
    Achievement("wpm-60", "Quick", "Reach 60 WPM", "best_wpm", 60),
    Achievement("wpm-80", "Fast", "Reach 80 WPM", "best_wpm", 80),
    Achievement("wpm-100", "Blazing", "Reach 100 WPM", "best_wpm", 100),
    Achievement("wpm-120", "Lightning", "Reach 120 WPM", "best_wpm", 120),
    Achievement(
        "accuracy-5",
        "Careful",
        f"5 tests in a row at {ACCURATE:.0f}% or better",
        "accuracy_streak",
        5,
    ),
    Achievement(
        "accuracy-20",
        "Precise",
        f"20 tests in a row at {ACCURATE:.0f}% or better",
        "accuracy_streak",
        20,
    ),
    Achievement("challenge-3", "Habit", "Daily challenge 3 days in a row", "challenge_streak", 3),
    Achievement("challenge-7", "Weekly", "Daily challenge 7 days in a row", "challenge_streak", 7),
    Achievement(
        "challenge-30", "Monthly", "Daily challenge 30 days in a row", "challenge_streak", 30
    ),
    Achievement("race-win", "Winner", "Win a race", "race_wins", 1),
    Achievement("race-wins-10", "Champion", "Win 10 races", "race_wins", 10),
    Achievement("languages-3", "Polyglot", "Type in 3 languages", "languages", 3),
    Achievement("languages-5", "Globetrotter", "Type in 5 languages", "languages", 5),
    Achievement("course-1", "Graduate", "Complete a course", "courses", 1),
    Achievement("courses-3", "Scholar", "Complete 3 courses", "courses", 3),
)
BY_ID: Final = {a.id: a for a in ACHIEVEMENTS}


@dataclass(frozen=True, slots=True)
class Facts:
    tests: int = 0
    best_wpm: float = 0.0
    accuracy_run: int = 0  # current run of accurate tests
    accuracy_streak: int = 0  # best run
    challenge_streak: int = 0  # best daily-challenge streak
    race_wins: int = 0
    langs: tuple[str, ...] = field(default=())
    courses: int = 0  # courses completed

    @property
    def languages(self) -> int:
        return len(self.langs)

    def value(self, metric: Metric) -> float:
        return float(getattr(self, metric))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Facts:
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        known["langs"] = tuple(known.get("langs", ()))
        return cls(**known)


@dataclass(frozen=True, slots=True)
class TestDone:
    wpm: float
    accuracy: float
    lang: str


@dataclass(frozen=True, slots=True)
class ChallengeStreak:
    days: int


@dataclass(frozen=True, slots=True)
class RaceWon:
    pass


@dataclass(frozen=True, slots=True)
class CourseCompleted:
    """Each course counts once: its event id comes from the user and the course."""


Fact = TestDone | ChallengeStreak | RaceWon | CourseCompleted


def observe(facts: Facts, fact: Fact) -> Facts:
    """Fold one fact in (rule 2)."""
    if isinstance(fact, TestDone):
        run = facts.accuracy_run + 1 if fact.accuracy >= ACCURATE else 0
        langs = (
            facts.langs if fact.lang in facts.langs else tuple(sorted({*facts.langs, fact.lang}))
        )
        return replace(
            facts,
            tests=facts.tests + 1,
            best_wpm=max(facts.best_wpm, fact.wpm),
            accuracy_run=run,
            accuracy_streak=max(facts.accuracy_streak, run),
            langs=langs,
        )
    if isinstance(fact, ChallengeStreak):
        return replace(facts, challenge_streak=max(facts.challenge_streak, fact.days))
    if isinstance(fact, CourseCompleted):
        return replace(facts, courses=facts.courses + 1)
    return replace(facts, race_wins=facts.race_wins + 1)


def earned(facts: Facts) -> list[Achievement]:
    """Every achievement the facts reach (rule 3), in definition order."""
    return [a for a in ACHIEVEMENTS if facts.value(a.metric) >= a.threshold]


def progress(facts: Facts, unlocked: set[str]) -> list[dict[str, Any]]:
    """Locked achievements with how far along the user is (0..1)."""
    return [
        {
            "id": a.id,
            "title": a.title,
            "description": a.description,
            "current": facts.value(a.metric),
            "target": a.threshold,
            "ratio": round(min(1.0, facts.value(a.metric) / a.threshold), 3),
        }
        for a in ACHIEVEMENTS
        if a.id not in unlocked
    ]
