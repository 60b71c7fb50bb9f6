"""`python -m voicebus_devstack.kafka_topics [PATH]`: write the Strimzi KafkaTopic resources of
every topic in `voicebus_contracts.topics` (default: k8s/base/kafka-topics.yaml, from the repo
root), so a cluster's topics have the partitions the code counts on. Partition counts are never
copied by hand: a test fails when the committed file is not this module's output.

The gateway replicas' own topics (`voicebus.gateway.<id>`) are not here: each replica creates
its own at start, as there is one per replica.
"""

from __future__ import annotations

import sys
from pathlib import Path

from voicebus_contracts.topics import ALL_TOPICS, CALL_TOPICS, Topic

DEFAULT_PATH = Path("k8s/base/kafka-topics.yaml")
STRIMZI_CLUSTER = "voicebus"
"""The Strimzi Kafka cluster the topics belong to (its `strimzi.io/cluster` label)."""
REPLICAS = 3
"""Replicas of each partition on a production cluster (the dev overlay sets 1)."""
CALL_TOPIC_RETENTION_MS = 24 * 3600 * 1000
"""A call's events matter while it lasts and until analytics, which may have been down for a
while, has recorded them: a day, not Kafka's week (inbound audio alone is 50 frames a second
per call). Other topics keep the cluster's retention (dead letters wait for an operator)."""


def kafka_topic(topic: Topic) -> str:
    """One KafkaTopic resource; its name is the topic's (`topicName` too, so a kustomize name
    prefix could not rename the topic)."""
    config = ""
    if topic.compacted:
        config = "  config:\n    cleanup.policy: compact\n"
    elif topic in CALL_TOPICS:
        config = f"  config:\n    retention.ms: {CALL_TOPIC_RETENTION_MS}\n"
    return (
        f"# {topic.carries}\n"
        "apiVersion: kafka.strimzi.io/v1beta2\n"
        "kind: KafkaTopic\n"
        "metadata:\n"
        f"  name: {topic.name}\n"
        "  labels:\n"
        f"    strimzi.io/cluster: {STRIMZI_CLUSTER}\n"
        "spec:\n"
        f"  topicName: {topic.name}\n"
        f"  partitions: {topic.partitions}\n"
        f"  replicas: {REPLICAS}\n"
        f"{config}"
    )


def kafka_topics_yaml() -> str:
    """The whole file: every topic's KafkaTopic, in the order `voicebus_contracts` lists them."""
    header = (
        "# Generated from voicebus_contracts.topics by"
        " `python -m voicebus_devstack.kafka_topics`:\n"
        "# do not edit; change the contracts and run it again.\n"
    )
    return header + "".join(f"---\n{kafka_topic(topic)}" for topic in ALL_TOPICS)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    path.write_text(kafka_topics_yaml())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
