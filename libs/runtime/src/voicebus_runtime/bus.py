"""The Kafka bus: a latency-tuned FastStream broker, idempotent topic provisioning, publishing.

Nothing here depends on the local broker's specifics: idempotent producers stay off (exactly-once
effects come from event ids), and everything else is plain Kafka protocol.

Every broker reports on itself: each message is handled inside its call (for logs and spans),
traced when tracing is configured, and counted in the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Literal

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaConnectionError
from faststream import BaseMiddleware, StreamMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy
from opentelemetry.sdk.trace import TracerProvider

from voicebus_contracts import Envelope, Event
from voicebus_contracts.topics import Topic
from voicebus_runtime import metrics
from voicebus_runtime.deadletters import DeadLetters
from voicebus_runtime.logs import BROKER_LOGGER, call_context
from voicebus_runtime.settings import DEFAULT_SESSION_TIMEOUT_MS
from voicebus_runtime.tracing import CallTelemetry, configured_provider

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
HEARTBEATS_PER_SESSION = 3
"""Kafka's advice: a heartbeat at most a third of the session timeout apart."""
"""Kafka protocol error code for CreateTopics on an existing topic."""


class _InItsCall(BaseMiddleware):
    """Handles each message inside its call, the message's key (every topic is keyed by call
    id): its logs and spans say which call they are about."""

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        key = msg.raw_message.key if isinstance(msg.raw_message, ConsumerRecord) else None
        if not key:  # a batch, or a message without a key
            return await call_next(msg)
        with call_context(key.decode(errors="replace") if isinstance(key, bytes) else str(key)):
            return await call_next(msg)


def make_broker(
    bootstrap: str, *, client_id: str, tracer_provider: TracerProvider | None = None
) -> KafkaBroker:
    """A broker tuned for latency: no linger, small fetch waits, acks from the leader set.

    Its messages are handled in their call, counted in the process's metrics, and traced to
    `tracer_provider`, by default the process's if `configure_tracing` set one up (so call that
    first); without one the broker makes no spans at all. A message its consumers fail to
    decode or handle is buried with the dead letters (`deadletters`), and they move on.
    """
    tracer_provider = tracer_provider or configured_provider()
    tracing = () if tracer_provider is None else (CallTelemetry(tracer_provider),)
    broker = KafkaBroker(
        bootstrap,
        client_id=client_id,
        linger_ms=0,
        acks="all",
        enable_idempotence=False,
        allow_auto_create_topics=False,
        graceful_timeout=10.0,
        middlewares=(
            _InItsCall,
            *tracing,
            KafkaPrometheusMiddleware(registry=metrics.REGISTRY),
        ),
        logger=logging.getLogger(BROKER_LOGGER),
        # FastStream logs every message received and processed at this level: keep it off INFO.
        log_level=logging.DEBUG,
    )
    # Outermost: what fails to decode or to be handled is buried, and the consumer moves on.
    broker.insert_middleware(DeadLetters(broker, consumer=client_id))
    return broker


BACKGROUND_FETCH_MAX_WAIT_MS = 500
"""Fetch wait for consumers off the voice path (records, liveness): Kafka's own default."""


def consumer_options(
    group_id: str | None,
    *,
    fetch_max_wait_ms: int = BACKGROUND_FETCH_MAX_WAIT_MS,
    commit: Literal["each", "periodic", "by_lanes"] = "each",
    from_beginning: bool = False,
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
) -> dict[str, Any]:
    """Subscriber options for a service's consumer group.

    Consumers on the voice path pass `BusSettings.kafka_fetch_max_wait_ms`; see there why it
    matters. `commit="each"` commits a message's offset once its handler ran (a crash replays
    it); `"periodic"` lets the consumer commit every few seconds, for streams too dense to wait
    on a commit per message whose handler can rebuild its state (a crash may skip a few
    seconds of them); `"by_lanes"` leaves committing to the handler, which hands its messages
    to `voicebus_runtime.lanes.CallLanes`. A consumer without a group has nothing to commit,
    and reads from the end of its topics unless `from_beginning` (a catalog it rebuilds in
    memory).

    Partitions are assigned by range, so partition p of every topic a group reads (all have
    the same count for call topics) goes to the same worker: one call, one worker. A worker
    silent for `session_timeout_ms` (`BusSettings.kafka_session_timeout_ms`) leaves the group
    and its partitions move; it heartbeats three times within that time.
    """
    if group_id is None or commit == "by_lanes":
        ack_policy = AckPolicy.MANUAL
    else:
        ack_policy = AckPolicy.ACK if commit == "each" else AckPolicy.ACK_FIRST
    return {
        "group_id": group_id,
        "auto_offset_reset": "earliest" if group_id or from_beginning else "latest",
        "fetch_max_wait_ms": fetch_max_wait_ms,
        "ack_policy": ack_policy,
        "partition_assignment_strategy": (RangePartitionAssignor,),
        "session_timeout_ms": session_timeout_ms,
        "heartbeat_interval_ms": session_timeout_ms // HEARTBEATS_PER_SESSION,
    }


async def ensure_topics(
    bootstrap: str, topics: Iterable[Topic], *, replication_factor: int = 1
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="voicebus-provisioner")
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise RuntimeError(f"cannot reach the Kafka bus at {bootstrap}: {exc}") from exc
    try:
        wanted = {t.name: t for t in topics}
        response = await admin.create_topics(
            [
                NewTopic(
                    t.name,
                    t.partitions,
                    replication_factor=replication_factor,
                    topic_configs={"cleanup.policy": "compact"} if t.compacted else {},
                )
                for t in wanted.values()
            ]
        )
        for name, code, message in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"cannot create topic {name}: error {code} {message}")
            if code == 0:
                log.info("created topic %s (%d partitions)", name, wanted[name].partitions)
    finally:
        await admin.close()


def headers_of(env: Envelope[Any]) -> dict[str, str]:
    """Kafka headers that let a consumer route or drop a message without parsing its body."""
    event: Event = env.event
    return {
        "event-type": str(getattr(event, "type", type(event).__name__)),
        "schema-version": str(env.schema_version),
        "event-id": str(env.event_id),
        "producer": env.producer,
        "content-type": "application/json",
    }


async def publish(
    broker: KafkaBroker, topic: Topic, env: Envelope[Any], *, confirm: bool = True
) -> None:
    """Publish `env` keyed by its call id; `confirm=False` skips waiting for the broker's ack."""
    await broker.publish(
        env.model_dump_json().encode(),
        topic.name,
        key=env.call_id.encode(),
        headers=headers_of(env),
        no_confirm=not confirm,
    )
