"""The consumer groups of a running stack: who is in each group and which worker holds a call.

Which member holds a partition is worked out the way the group's leader works it out, with the
assignor the services configure (`consumer_options`: by range over the sorted member ids), from
the member ids the broker describes; not every Kafka-protocol broker describes assignments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from aiokafka.partitioner import murmur2

from voicebus_contracts.topics import Topic

GROUP_WAIT_S = 60.0
"""Guards against a hung test only."""


@dataclass(frozen=True)
class Member:
    member_id: str
    """Kafka's `<client id>-<uuid>`; a client id ends with its instance id, and the local
    stack's instance ids are its process names ("agent-0")."""

    def is_process(self, process: str) -> bool:
        return f"-{process}-" in self.member_id


async def members(bootstrap: str, group: str) -> list[Member]:
    """The members of `group` once it is stable (none while it rebalances)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _, _, state, _, _, described = response[0].groups[0]
    return [Member(member[0]) for member in described] if state == "Stable" else []


async def wait_for_group(bootstrap: str, group: str, processes: Sequence[str]) -> list[Member]:
    """`group`'s members once `processes` and no others share its partitions, so no rebalance
    moves a call while a test sets it up."""
    deadline = time.monotonic() + GROUP_WAIT_S
    while True:
        found = await members(bootstrap, group)
        joined = {p for p in processes if any(m.is_process(p) for m in found)}
        if len(found) == len(processes) and joined == set(processes):
            return found
        assert time.monotonic() < deadline, f"group {group} is {found}, not {processes}"
        await asyncio.sleep(0.5)


def partition_of(call_id: str, topic: Topic) -> int:
    """The partition of `topic` a call's events go to (keyed by call id, Kafka's partitioner)."""
    hashed: int = murmur2(call_id.encode())
    return (hashed & 0x7FFFFFFF) % topic.partitions


class _Partitions:
    """The one fact of the cluster an assignor needs: each topic's partitions."""

    def __init__(self, topic: Topic) -> None:
        self._topic = topic

    def partitions_for_topic(self, name: str) -> set[int] | None:
        return set(range(self._topic.partitions)) if name == self._topic.name else None


async def holder_of(
    bootstrap: str, group: str, processes: Sequence[str], topic: Topic, call_id: str
) -> str:
    """The process of `processes` in `group` that holds `call_id`'s partition of `topic`."""
    partition = partition_of(call_id, topic)
    found = await wait_for_group(bootstrap, group, processes)
    subscribed = {m.member_id: ConsumerProtocolMemberMetadata(0, [topic.name], b"") for m in found}
    assignment = RangePartitionAssignor.assign(_Partitions(topic), subscribed)
    for member in found:
        if partition in dict(assignment[member.member_id].assignment).get(topic.name, []):
            return next(p for p in processes if member.is_process(p))
    raise AssertionError(f"no member of {group} holds {topic.name}[{partition}]")
