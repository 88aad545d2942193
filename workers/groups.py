"""Every consumer group by name; ``typogram worker NAME|all`` picks from here."""

from __future__ import annotations

from workers import chat, courses, mail, payments, pipeline, races, reviews
from workers.runtime import Group

GROUPS: dict[str, Group] = {
    group.name: group
    for group in (
        chat.GROUP,
        races.GROUP,
        races.TOURNAMENTS_GROUP,
        reviews.GROUP,
        *pipeline.GROUPS,
        courses.GROUP,
        payments.GROUP,
        mail.GROUP,
        mail.NOTICES_GROUP,
    )
}
