"""``typogram dlq list|replay``: dead letters on Kafka (``workers.dlq`` does the work)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import uvloop

from typogram.errors import BackendUnavailable

if TYPE_CHECKING:
    from typogram.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = commands.add_parser(
        "dlq", help="list and replay dead letters (<topic>.dlq) on Kafka; see docs/operations.md"
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = actions.add_parser("list", help="counts per dead-letter topic and their entries")
    listing.add_argument("topic", nargs="?", help="a topic, with or without .dlq (default: all)")
    replay = actions.add_parser(
        "replay", help="republish dead letters to their topic for the consumers to process again"
    )
    replay.add_argument("topic", help="a topic, with or without .dlq")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--id", dest="ids", action="append", metavar="ID", help="an event id (repeatable)"
    )
    which.add_argument("--all", action="store_true", help="every pending entry")
    replay.add_argument("--dry-run", action="store_true", help="print, change nothing")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """``typogram dlq``: 0 done, 1 an entry refused or Kafka unreachable, 2 bad input."""
    import time

    from aiokafka.errors import KafkaError

    from typogram.adapters.kafka import KafkaEventLog
    from workers import dlq

    try:
        topic = None if args.topic is None else dlq.source_topic(args.topic)
    except dlq.UnknownTopic as exc:
        print(f"typogram: {exc}", file=sys.stderr)
        return 2
    if not settings.kafka_bootstrap:
        print(
            "typogram: dlq reads Kafka: set TYPOGRAM_KAFKA_BOOTSTRAP (typogram serve keeps "
            "its dead letters inside its own process)",
            file=sys.stderr,
        )
        return 2

    async def run() -> int:
        async with KafkaEventLog.from_settings(settings) as events:
            if args.dlq_command == "list":
                return await dlq.list_command(
                    events, topic, max_records=settings.worker_dlq_read_max, out=print
                )
            assert topic is not None, "replay requires a topic"
            return await dlq.replay_command(
                events,
                topic,
                None if args.all else args.ids,
                dry_run=args.dry_run,
                limit=settings.worker_dlq_replay_limit,
                max_records=settings.worker_dlq_read_max,
                at_ms=int(time.time() * 1000),
                out=print,
            )

    try:
        return uvloop.run(run())
    except dlq.UnknownIds as exc:
        print(f"typogram: {exc}", file=sys.stderr)
        return 2
    except (BackendUnavailable, KafkaError, OSError) as exc:  # TimeoutError is an OSError
        print(f"typogram: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
