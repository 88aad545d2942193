"""``typogram.result_record``: one result type, and the row, event and API view derived
from it (round trips, the wire kept byte for byte, old events read)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rest.results import ResultView
from typogram.anticheat import Reason, Verdict
from typogram.db.schema import test_results
from typogram.result_record import (
    EVENT_ONLY,
    PublicResult,
    ResultRecord,
    Submission,
    record_of,
)
from typogram.results import accepted_event
from typogram.texts import TextSpec
from typogram.typing import replay, score

TEXT = "the quick brown fox jumps over the lazy dog"
ACCEPTED = Verdict("accept")


def typed(text: str, pace_ms: int = 180) -> list[tuple[int, str]]:
    return [(n * pace_ms, ch) for n, ch in enumerate(text)]


def submission(
    *,
    spec: TextSpec,
    text: str = TEXT,
    verdict: Verdict = ACCEPTED,
    ranked: bool = True,
    evidence: dict[str, Any] | None = None,
    seed: int = 7,
    created_at: int = 1_767_225_600_000,
) -> Submission:
    run = replay(text, typed(text))
    result = score(run, seconds=spec.seconds if spec.mode == "time" else None)
    return Submission(
        result_id="a" * 32,
        user_id="b" * 32,
        username="ada",
        test_id="c" * 32,
        spec=spec,
        seed=seed,
        result=result,
        verdict=verdict,
        created_at=created_at,
        ranked=ranked,
        evidence=evidence or {},
    )


def wire_data() -> dict[str, Any]:
    """A plain words test's ``result.accepted`` data as it travels."""
    record = record_of(submission(spec=TextSpec("words", count=25)))
    data: dict[str, Any] = orjson.loads(accepted_event(record).encode())["data"]
    return data


specs = st.one_of(
    st.builds(
        TextSpec,
        mode=st.just("words"),
        lang=st.sampled_from(["en", "de"]),
        count=st.sampled_from([10, 25, 50]),
        punctuation=st.booleans(),
        numbers=st.booleans(),
        difficulty=st.sampled_from(["easy", "medium", "hard"]),
    ),
    st.builds(
        TextSpec,
        mode=st.just("time"),
        lang=st.sampled_from(["en", "fr"]),
        seconds=st.sampled_from([15, 60]),
        punctuation=st.booleans(),
        numbers=st.booleans(),
    ),
)
verdicts = st.one_of(
    st.just(ACCEPTED),
    st.builds(
        lambda codes, long: Verdict(
            "flag", tuple(Reason(c, ("x" * 300 if long else "why ") + c) for c in codes)
        ),
        st.lists(st.sampled_from(["wpm_high", "uniform_timing"]), min_size=1, max_size=2),
        st.booleans(),
    ),
)
submissions = st.builds(
    lambda spec, verdict, ranked, seed, at: submission(
        spec=spec,
        verdict=verdict,
        ranked=ranked,
        seed=seed,
        created_at=at,
        evidence={"wpm": 1.5, "timing": {"intervals": 3}},
    ),
    specs,
    verdicts,
    st.booleans(),
    st.integers(0, 2**53),
    st.integers(1_700_000_000_000, 1_900_000_000_000),
)


@settings(max_examples=60, deadline=None)
@given(sub=submissions)
def test_the_event_decodes_to_the_record_it_came_from(sub: Submission) -> None:
    record = record_of(sub)
    wire = orjson.loads(accepted_event(record).encode())["data"]
    assert ResultRecord.of_event(wire) == record
    assert ResultRecord.of_event(wire).row() == record.row()


@settings(max_examples=60, deadline=None)
@given(sub=submissions)
def test_the_row_reads_back_as_the_same_view(sub: Submission) -> None:
    record = record_of(sub)
    row = record.row()
    assert set(row) == set(test_results.c.keys())  # every column, nothing else
    assert ResultRecord.of_row(row).view() == record.view()
    assert len(row["flag_reason"]) <= 255
    assert (row["flag_reason"] != "") == (sub.verdict.action == "flag")


@settings(max_examples=60, deadline=None)
@given(sub=submissions)
def test_the_view_is_what_the_api_schema_says(sub: Submission) -> None:
    view = record_of(sub).view()
    decoded = msgspec.convert(view, PublicResult)  # strict: the types the schema promises
    assert list(view) == list(PublicResult.__struct_fields__)
    assert msgspec.to_builtins(decoded) == view
    assert msgspec.json.decode(orjson.dumps(view), type=ResultView).per_second is None


def test_the_view_is_every_field_but_the_event_only_ones() -> None:
    """Rule 3: a field added to the record reaches the API schema by itself."""
    public = [name for name in ResultRecord.__struct_fields__ if name not in EVENT_ONLY]
    assert EVENT_ONLY.issubset(ResultRecord.__struct_fields__)  # no stale name in the list
    assert list(PublicResult.__struct_fields__) == public
    schema = msgspec.json.schema(ResultView)["$defs"]["ResultView"]
    assert list(schema["properties"]) == [*public, "per_second"]
    assert schema["properties"]["id"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert set(schema["required"]) == set(public)


def test_the_event_and_the_view_keep_their_bytes() -> None:
    """The wire as it was before the one type: field names, order and values."""
    spec = TextSpec("words", count=25, punctuation=True)
    sub = submission(spec=spec, verdict=Verdict("flag", (Reason("wpm_high", "too fast"),)))
    record = record_of(sub)
    event = orjson.loads(accepted_event(record).encode())
    assert event["type"] == "result.accepted" and event["v"] == 1
    assert event["id"] == event["data"]["result_id"] == "a" * 32
    assert list(event["data"]) == [
        "result_id", "user_id", "username", "test_id", "mode", "lang", "count", "seconds",
        "punctuation", "numbers", "difficulty", "category", "personal_best_category", "wpm",
        "raw_wpm", "accuracy", "consistency", "duration_ms", "chars", "keystrokes", "flagged",
        "flag_reasons", "flag_reason", "flag_evidence", "ranked", "seed", "created_at", "keys",
        "bigrams", "confusions",
    ]  # fmt: skip
    data = event["data"]
    assert data["category"] is None  # punctuation: no board
    assert data["personal_best_category"] == "words-25-en-punct"
    assert data["flag_reasons"] == ["wpm_high"] and data["flag_reason"] == "too fast"
    assert list(data["chars"]) == ["correct", "incorrect", "extra", "missed"]
    view = record.view()
    assert list(orjson.loads(orjson.dumps(view))) == [
        "id", "test_id", "mode", "lang", "count", "seconds", "punctuation", "numbers",
        "difficulty", "category", "wpm", "raw_wpm", "accuracy", "consistency", "duration_ms",
        "chars", "keystrokes", "flagged", "flag_reason", "ranked", "created_at",
    ]  # fmt: skip
    assert view["category"] == "words-25-en-punct" and view["flagged"] is True
    assert record.row()["word_count"] == 25 and record.row()["punctuation"] == 1


def test_an_event_older_than_its_fields_reads_with_their_defaults() -> None:
    data = wire_data()
    for newer in ("seed", "ranked", "difficulty", "username", "flag_reason", "flag_evidence"):
        del data[newer]
    record = ResultRecord.of_event(data)
    assert (record.seed, record.ranked, record.difficulty) == (0, True, "medium")
    row = record.row()
    assert row["seed"] == 0 and row["ranked"] == 1 and row["flag_reason"] == ""


def test_a_flag_reason_is_kept_only_when_flagged_and_cut_to_its_column() -> None:
    data = wire_data()
    assert ResultRecord.of_event({**data, "flag_reason": "stale"}).flag_reason == ""
    long = ResultRecord.of_event({**data, "flagged": True, "flag_reason": "y" * 400})
    assert long.flag_reason == "y" * 255


@pytest.mark.parametrize(
    "broken",
    [
        {"wpm": "fast"},
        {"chars": {"correct": 1}},
        {"result_id": None},
        {"created_at": "yesterday"},
    ],
)
def test_an_event_that_does_not_fit_is_a_value_error(broken: dict[str, Any]) -> None:
    data = wire_data()
    with pytest.raises(ValueError, match="does not fit"):
        ResultRecord.of_event({**data, **broken})
    missing = {k: v for k, v in data.items() if k != "personal_best_category"}
    with pytest.raises(ValueError, match="does not fit"):
        ResultRecord.of_event(missing)
