"""The starter catalog and plans a new platform ships with (migration 0009 and
``typogram seed-courses`` load them). Plain data: ``StarterCourse`` and ``Plan``.

Goals rise gently: beginner lessons ask 15-25 WPM at 90-95 % accuracy, the
speed course 40-60 WPM. Ids are derived from the slugs, so loading twice
finds the same rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Final

from typogram.courses.model import (
    AdaptiveSource,
    FixedSource,
    GeneratedSource,
    Goal,
    Level,
    Source,
)
from typogram.subscriptions.rules import Plan


@dataclass(frozen=True, slots=True)
class StarterLesson:
    title: str
    instructions: str
    source: Source
    goal: Goal


@dataclass(frozen=True, slots=True)
class StarterCourse:
    slug: str
    title: str
    description: str
    language: str
    level: Level
    tags: tuple[str, ...]
    cover_color: str
    premium: bool
    position: int
    lessons: tuple[StarterLesson, ...] = field(default=())

    @property
    def id(self) -> str:
        return course_id(self.slug)


def course_id(slug: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"typogram:course:{slug}").hex


def lesson_id(slug: str, number: int) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"typogram:course:{slug}:lesson:{number}").hex


def _lesson(title: str, instructions: str, source: Source, wpm: float, accuracy: float,
            seconds: int | None = None) -> StarterLesson:  # fmt: skip
    return StarterLesson(title, instructions, source, Goal(wpm, accuracy, seconds))


HOME_ROW = "asdfghjkl"
TOP_ROW = "qwertyuiop"

# fmt: off
COURSES: Final[tuple[StarterCourse, ...]] = (
    StarterCourse(
        slug="home-row-basics",
        title="Home-row basics",
        description=(
            "Find the home row and never look down again. Rest your index fingers on F and "
            "J, feel the bumps, and learn the eight keys every other key is reached from."
        ),
        language="en",
        level="beginner",
        tags=("home-row", "fundamentals", "touch-typing"),
        cover_color="#2563eb",
        premium=False,
        position=10,
        lessons=(
            _lesson("F and J", "Index fingers on F and J. Type each group without looking.",
                    FixedSource("fff jjj fjf jfj ffj jjf fjj jff fj jf fjfj jfjf"), 10, 90),
            _lesson("D and K", "Middle fingers join in: D with the left, K with the right.",
                    FixedSource("ddd kkk dkd kdk fdk jkd dfk kjd dk kd fdjk kjfd"), 12, 90),
            _lesson("S, L and A", "Ring and little fingers: S and L, then A.",
                    FixedSource("sss lll sls lsl aaa asa sal las all fall flask salad"), 12, 90),
            _lesson("Home-row words", "Real words made of home-row keys only.",
                    GeneratedSource(count=15, keys=HOME_ROW, only_keys=True), 15, 92),
            _lesson("Home row at speed", "The same keys, a little faster now.",
                    GeneratedSource(count=25, keys=HOME_ROW, only_keys=True), 22, 94),
        ),
    ),
    StarterCourse(
        slug="top-row",
        title="Reaching the top row",
        description=(
            "Stretch up from the home row to Q W E R T Y U I O P and come straight back. "
            "Short drills, then real words built from the top row."
        ),
        language="en",
        level="beginner",
        tags=("top-row", "fundamentals", "touch-typing"),
        cover_color="#0891b2",
        premium=False,
        position=20,
        lessons=(
            _lesson("E and I", "Middle fingers reach up to E and I.",
                    FixedSource("ded kik ded kik die kid dike ski side like life"), 12, 90),
            _lesson("R, T, U and Y", "Index fingers reach up and in.",
                    FixedSource("frf juj ftf jyj rut tug yuk fry try jury fruit"), 12, 90),
            _lesson("W, O, Q and P", "Ring and little fingers reach the corners.",
                    FixedSource("sws lol aqa ;p; wow pop quip prow slow plow"), 12, 88),
            _lesson("Top-row words", "Words made of top-row keys only.",
                    GeneratedSource(count=20, keys=TOP_ROW, only_keys=True), 18, 92),
            _lesson("Both rows", "Common words that mix the home and top rows.",
                    GeneratedSource(count=25, difficulty="easy", keys=TOP_ROW), 22, 93),
        ),
    ),
    StarterCourse(
        slug="numbers-and-symbols",
        title="Numbers and symbols",
        description=(
            "Dates, prices, percentages and punctuation: the number row and the symbols "
            "that make everyday text, one reach at a time."
        ),
        language="en",
        level="intermediate",
        tags=("numbers", "symbols", "punctuation"),
        cover_color="#7c3aed",
        premium=False,
        position=30,
        lessons=(
            _lesson("1 to 5", "Left hand on the number row.",
                    FixedSource("1 2 3 4 5 12 23 34 45 51 123 234 345 451 512 1234 2345"), 12, 90),
            _lesson("6 to 0", "Right hand on the number row.",
                    FixedSource("6 7 8 9 0 67 78 89 90 06 678 789 890 906 7890 6789"), 12, 90),
            _lesson("Prices and dates", "Numbers the way they appear in text.",
                    FixedSource("On 12/05 it cost $45.90, on 03/06 only $38.25 (15% off)."),
                    15, 90),
            _lesson("Punctuation in sentences", "Commas, full stops, colons and questions.",
                    GeneratedSource(count=25, punctuation=True), 25, 92),
            _lesson("Words and numbers", "Everything at once: words, numbers, punctuation.",
                    GeneratedSource(count=30, punctuation=True, numbers=True), 28, 92),
        ),
    ),
    StarterCourse(
        slug="common-english-bigrams",
        title="Common English bigrams",
        description=(
            "TH, HE, IN, ER, AN, RE: a handful of letter pairs make up much of English. "
            "Make them one motion, then let your own weakest pairs decide the drills."
        ),
        language="en",
        level="intermediate",
        tags=("bigrams", "fluency"),
        cover_color="#059669",
        premium=False,
        position=40,
        lessons=(
            _lesson("TH and HE", "The most common pair in English, and its partner.",
                    FixedSource("the then them they there these other father thin with"), 20, 92),
            _lesson("IN and ER", "Roll from one finger to the next.",
                    FixedSource("in inner winter dinner finer miner print tiger under"), 20, 92),
            _lesson("AN and RE", "Alternate hands for speed.",
                    FixedSource("an and hand land are read more here ready random answer"),
                    22, 92),
            _lesson("Bigrams in real words", "Words rich in the pairs above.",
                    GeneratedSource(count=25, keys="thheinerre"), 25, 93),
            _lesson("Your weakest pairs", "Built from your own slowest keys and pairs.",
                    AdaptiveSource(count=25), 25, 93),
        ),
    ),
    StarterCourse(
        slug="speed-building",
        title="Speed building",
        description=(
            "For typists who already touch-type: timed runs with rising goals, harder "
            "vocabulary and drills built from your own weak keys, from 40 to 60 WPM."
        ),
        language="en",
        level="advanced",
        tags=("speed", "timed"),
        cover_color="#dc2626",
        premium=True,
        position=50,
        lessons=(
            _lesson("Warm-up run", "Thirty seconds of common words: settle in.",
                    GeneratedSource(mode="time", seconds=30, difficulty="easy"), 40, 95),
            _lesson("Steady at 45", "A full minute at a pace you can hold.",
                    GeneratedSource(mode="time", seconds=60), 45, 95),
            _lesson("Your weak keys", "Words built from your own weakest keys and pairs.",
                    AdaptiveSource(count=40), 45, 95),
            _lesson("Harder words", "Longer, rarer words in fifty-word runs.",
                    GeneratedSource(count=50, difficulty="hard"), 45, 94, 90),
            _lesson("Sixty", "One minute at sixty words per minute.",
                    GeneratedSource(mode="time", seconds=60), 60, 96),
        ),
    ),
    StarterCourse(
        slug="precision-drills",
        title="Precision drills",
        description=(
            "Accuracy before speed: every lesson asks for 97 % or better, with punctuation "
            "and numbers that punish a careless finger."
        ),
        language="en",
        level="intermediate",
        tags=("accuracy", "punctuation"),
        cover_color="#ca8a04",
        premium=True,
        position=60,
        lessons=(
            _lesson("Clean words", "No mistakes: slow down if you must.",
                    GeneratedSource(count=25), 30, 98),
            _lesson("Clean sentences", "Capitals and punctuation, still clean.",
                    GeneratedSource(count=30, punctuation=True), 30, 97),
            _lesson("Clean numbers", "Numbers mixed in, still clean.",
                    GeneratedSource(count=30, punctuation=True, numbers=True), 30, 97),
        ),
    ),
    StarterCourse(
        slug="espanol-primeros-pasos",
        title="Español: primeros pasos",
        description=(
            "Mecanografía en español: la fila guía, la Ñ y las tildes, y las palabras más "
            "frecuentes del idioma, paso a paso."
        ),
        language="es",
        level="beginner",
        tags=("espanol", "home-row", "fundamentals"),
        cover_color="#ea580c",
        premium=False,
        position=70,
        lessons=(
            _lesson("La fila guía", "Los índices en la F y la J; sin mirar el teclado.",
                    FixedSource("asdf ñlkj fjfj ñaña sala lasa falda hada jaja"), 10, 90),
            _lesson("Palabras de la fila guía", "Palabras reales hechas con la fila guía.",
                    GeneratedSource(count=15, keys="asdfghjklñ", only_keys=True), 14, 90),
            _lesson("Tildes", "Las vocales con tilde: á é í ó ú.",
                    FixedSource("está más también así después qué día sí aquí él"), 14, 90),
            _lesson("Palabras frecuentes", "Las palabras más comunes del español.",
                    GeneratedSource(count=25, difficulty="easy"), 20, 92),
        ),
    ),
)

# fmt: on

PLANS: Final[tuple[Plan, ...]] = (
    Plan("monthly", "Premium monthly", "Every premium course, billed monthly.",
         999, "USD", "month", 1),
    Plan("yearly", "Premium yearly", "Every premium course, billed yearly: two months free.",
         9990, "USD", "year", 1),
)  # fmt: skip
