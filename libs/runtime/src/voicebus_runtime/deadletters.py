"""Dead letters: the messages a consumer could not decode or handle, kept with why.

A message whose handling raises would otherwise be lost (committed past, with a log line) or,
retried forever, stall its partition and every call on it. Instead it is buried on
`voicebus.deadletters`: its value and headers as they were, its key (the call id), and headers
saying where it came from (topic, partition, offset), who failed on it and with what error. The
consumer then moves on. Once the cause is fixed, `python -m voicebus_runtime.deadletters replay`
publishes dead letters back to their topics; consumers take a replayed event once (event ids).

    python -m voicebus_runtime.deadletters list [--topic T] [--limit N]
    python -m voicebus_runtime.deadletters replay (--all | --offset N ...) [--topic T]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from faststream import BaseMiddleware, ContextRepo, StreamMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.response import KafkaPublishCommand

from voicebus_contracts.topics import DEAD_LETTERS
from voicebus_runtime.settings import BusSettings

log = logging.getLogger(__name__)

HEADER = "voicebus-dead-"
"""The prefix of the headers a burial adds; a replay takes them off again."""
ERROR_CHARS = 2_000


@dataclass(frozen=True)
class DeadLetter:
    """A buried message, as `list` shows it."""

    offset: int
    """Its place on the dead-letter topic (what `replay --offset` names)."""
    topic: str
    partition: int
    source_offset: int
    consumer: str
    """The client that failed on it (service and instance)."""
    error: str
    buried_at: float
    key: str | None
    size: int
    """Bytes of the message's value."""

    @classmethod
    def of(cls, record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
        why = {k.removeprefix(HEADER): v.decode(errors="replace") for k, v in record.headers}
        return cls(
            offset=record.offset,
            topic=why.get("topic", "?"),
            partition=int(why.get("partition", -1)),
            source_offset=int(why.get("offset", -1)),
            consumer=why.get("consumer", "?"),
            error=why.get("error", "?"),
            buried_at=float(why.get("at", 0.0)),
            key=None if record.key is None else record.key.decode(errors="replace"),
            size=len(record.value or b""),
        )


def _why(record: ConsumerRecord[Any, Any], error: BaseException, consumer: str) -> dict[str, str]:
    return {
        f"{HEADER}topic": record.topic,
        f"{HEADER}partition": str(record.partition),
        f"{HEADER}offset": str(record.offset),
        f"{HEADER}consumer": consumer,
        f"{HEADER}error": f"{type(error).__name__}: {error}"[:ERROR_CHARS],
        f"{HEADER}at": f"{time.time():.3f}",
    }


class DeadLetters:
    """Buries what `broker`'s consumers fail on (a broker middleware, outermost: decoding and
    handling both run inside it), and what work handed off elsewhere fails on (`bury`)."""

    def __init__(self, broker: KafkaBroker, *, consumer: str) -> None:
        self._broker = broker
        self._consumer = consumer

    async def bury(self, record: ConsumerRecord[Any, Any], error: BaseException) -> None:
        """Keep `record` on the dead-letter topic, with why; logged either way. A dead letter
        that fails again (a consumer of the dead letters failing) is only logged: burying it
        would feed the failure back to itself."""
        if record.topic == DEAD_LETTERS.name:
            log.error(
                "dead letter at offset %d failed again (%s: %s): left where it is",
                record.offset,
                type(error).__name__,
                error,
            )
            return
        log.error(
            "a message of %s[%d] at offset %d failed (%s: %s): buried on %s",
            record.topic,
            record.partition,
            record.offset,
            type(error).__name__,
            error,
            DEAD_LETTERS.name,
        )
        original = {k: v.decode(errors="replace") for k, v in record.headers or ()}
        try:
            await self._broker.publish(
                record.value,
                DEAD_LETTERS.name,
                key=record.key,
                headers={**original, **_why(record, error, self._consumer)},
            )
        except Exception:
            log.exception("the failed message could not be buried: it is lost")

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> _Burying:
        return _Burying(msg, context=context, dead_letters=self)


class _Burying(BaseMiddleware[KafkaPublishCommand, Any]):
    def __init__(self, msg: Any, /, *, context: ContextRepo, dead_letters: DeadLetters) -> None:
        super().__init__(msg, context=context)
        self._dead_letters = dead_letters

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        try:
            return await call_next(msg)
        except Exception as error:
            record = msg.raw_message
            if not isinstance(record, ConsumerRecord):
                raise
            await self._dead_letters.bury(record, error)
            return None


async def read(bootstrap: str, *, topic: str | None = None) -> list[ConsumerRecord[bytes, bytes]]:
    """Every dead letter so far (of messages of `topic`, if given), oldest first."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="voicebus-deadletters"
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(DEAD_LETTERS.name, p)
            for p in sorted(consumer.partitions_for_topic(DEAD_LETTERS.name) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            batches = await consumer.getmany(*partitions, timeout_ms=1_000)
            records.extend(r for batch in batches.values() for r in batch)
    finally:
        await consumer.stop()
    return [r for r in records if topic is None or DeadLetter.of(r).topic == topic]


async def replay(bootstrap: str, records: Sequence[ConsumerRecord[bytes, bytes]]) -> int:
    """Publish each of `records` back to its topic, as it was before it was buried."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                DeadLetter.of(record).topic,
                record.value,
                key=record.key,
                headers=[(k, v) for k, v in record.headers if not k.startswith(HEADER)],
            )
    finally:
        await producer.stop()
    return len(records)


async def _main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m voicebus_runtime.deadletters",
        description=f"List or replay the messages consumers failed on ({DEAD_LETTERS.name}).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one JSON line per dead letter, oldest first")
    listing.add_argument("--topic", help="only messages of this topic")
    listing.add_argument("--limit", type=int, default=100, help="the newest N (default 100)")
    replaying = commands.add_parser("replay", help="publish dead letters back to their topics")
    which = replaying.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead letter (of --topic)")
    which.add_argument("--offset", type=int, nargs="+", help="the dead letters at these offsets")
    replaying.add_argument("--topic", help="only messages of this topic")
    args = parser.parse_args(argv)

    bootstrap = BusSettings().kafka_bootstrap
    records = await read(bootstrap, topic=args.topic)
    if args.command == "list":
        for record in records[-args.limit :]:
            print(json.dumps(asdict(DeadLetter.of(record))))
        return 0
    if not args.all:
        wanted = set(args.offset)
        records = [r for r in records if r.offset in wanted]
        if missing := wanted - {r.offset for r in records}:
            print(f"no dead letter at offset {sorted(missing)}", file=sys.stderr)
            return 1
    print(f"replayed {await replay(bootstrap, records)} dead letters")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main(sys.argv[1:])))
