"""``typogram.ids``: random ids drawn in pools."""

from __future__ import annotations

import string

from typogram.ids import RandomIds


def test_ids_are_32_hex_digits_and_distinct_across_pools() -> None:
    ids = RandomIds()
    drawn = [ids() for _ in range(RandomIds.POOL * 3 + 5)]
    assert all(len(i) == 32 and set(i) <= set(string.hexdigits.lower()) for i in drawn)
    assert len(set(drawn)) == len(drawn)


def test_two_sources_do_not_repeat_each_other() -> None:
    assert {RandomIds()() for _ in range(50)}.__len__() == 50
