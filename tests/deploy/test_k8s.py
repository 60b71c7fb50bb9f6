"""k8s/: each overlay, as kustomize renders it, is valid Kubernetes (kubernetes-validate's
schemas, strict) and valid KEDA and Strimzi resources (their CRDs' schemas, vendored), and true
to the code: topics with the contracts' partitions, every service run once with probes on its
/healthz, resources and a grace period, every worker scaled on the lag of exactly the consumer
group and topics its code consumes, every variable set one its service reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from voicebus_contracts.topics import ALL_TOPICS
from voicebus_devstack.kafka_topics import DEFAULT_PATH, kafka_topics_yaml, main
from voicebus_runtime.metrics import BROKER_PING_TIMEOUT_S
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings

from .conftest import OVERLAYS, REPO, Service, has_main

KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
"""The oldest Kubernetes the manifests are meant for, and the newest kubernetes-validate knows."""
SCHEMAS = Path(__file__).parent / "schemas"
CUSTOM_RESOURCES = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "keda-scaledobject-v1alpha1.yaml",
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): SCHEMAS / "strimzi-kafkatopic-v1beta2.yaml",
}
WORKERS = ("media", "stt", "agent", "tts")
"""The services KEDA scales on their consumer lag (the gateway scales on CPU; analytics runs
alone, see k8s/base/analytics.yaml)."""
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

Resource = dict[str, Any]


def strict(schema: Any) -> Any:
    """A CRD's structural schema as the API server applies it with strict field validation
    (kubectl's default): unknown fields are errors, except where the schema keeps them."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tightened = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        tightened["additionalProperties"] = False
    return tightened


def of_kind(resources: list[Resource], *kinds: str) -> list[Resource]:
    return [resource for resource in resources if resource["kind"] in kinds]


def named(resources: list[Resource], kind: str, name: str) -> Resource:
    (found,) = [r for r in of_kind(resources, kind) if r["metadata"]["name"] == name]
    return found


def workloads(resources: list[Resource]) -> list[Resource]:
    return of_kind(resources, "Deployment", "StatefulSet")


def pod_spec(workload: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def package_of(container: dict[str, Any]) -> str:
    """The voicebus package a container runs (`python -m <package> ...`)."""
    python, flag, package, *_ = container["command"]
    assert (python, flag) == ("python", "-m"), container["command"]
    assert isinstance(package, str)
    return package


def environment(resources: list[Resource], container: dict[str, Any]) -> dict[str, str]:
    """The plain values a container gets: its ConfigMaps' data, then its own `value`s."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = named(resources, "ConfigMap", source["configMapRef"]["name"])
        values.update(config_map["data"])
    values.update({v["name"]: v["value"] for v in container.get("env", []) if "value" in v})
    return values


def containers(resources: list[Resource]) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """Every container of every workload and Job, init containers too, with its owner."""
    for owner in of_kind(resources, "Deployment", "StatefulSet", "Job"):
        spec = pod_spec(owner)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield owner, container


def consumed(broker: KafkaBroker) -> set[tuple[str, str]]:
    """(consumer group, topic) of each topic a broker's grouped subscribers read."""
    return {
        (group, topic)
        for subscriber in broker.subscribers
        if (group := getattr(subscriber, "group_id", None))
        for topic in getattr(subscriber, "topic_names", ())
    }


@pytest.fixture(scope="module")
def consumer_groups() -> dict[str, set[tuple[str, str]]]:
    """What each worker's code consumes, from the broker its own factory builds (nothing is
    connected; the instant providers load no model)."""
    from voicebus_agent.app import build  # noqa: PLC0415 - heavy: only this fixture needs them
    from voicebus_agent.settings import AgentSettings  # noqa: PLC0415
    from voicebus_media.app import build_broker  # noqa: PLC0415
    from voicebus_media.settings import MediaSettings  # noqa: PLC0415
    from voicebus_media.silero import SileroVad  # noqa: PLC0415
    from voicebus_stt.app import create_app as stt_app  # noqa: PLC0415
    from voicebus_stt.settings import SttSettings  # noqa: PLC0415
    from voicebus_tts.app import create_app as tts_app  # noqa: PLC0415
    from voicebus_tts.settings import TtsSettings  # noqa: PLC0415

    bus = BusSettings()
    media, _ = build_broker(
        bus=bus,
        settings=MediaSettings(),
        vad=SileroVad(),
        registry=CallRegistry(Redis.from_url(bus.redis_url)),
    )
    (stt,) = stt_app(SttSettings(provider="instant"), bus=bus).brokers
    (tts,) = tts_app(bus=bus, settings=TtsSettings(provider="instant")).brokers
    assert isinstance(stt, KafkaBroker)
    assert isinstance(tts, KafkaBroker)
    brokers = {
        "media": media,
        "stt": stt,
        "agent": build(settings=AgentSettings(offline="echo"), bus=bus).broker,
        "tts": tts,
    }
    return {name: consumed(broker) for name, broker in brokers.items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_resource_is_valid(
    rendered: dict[str, list[Resource]], overlay: str, version: str
) -> None:
    custom = {
        kind: jsonschema.Draft202012Validator(strict(yaml.safe_load(path.read_text())))
        for kind, path in CUSTOM_RESOURCES.items()
    }
    invalid = []
    for resource in rendered[overlay]:
        name = f"{resource['kind']} {resource['metadata']['name']}"
        validator = custom.get((resource["apiVersion"], resource["kind"]))
        if validator is not None:
            errors = list(validator.iter_errors(resource))
        else:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
                errors = []
            except kubernetes_validate.ValidationError as error:
                errors = [error]
        invalid += [f"{name}: {'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    assert not invalid, "\n".join(invalid)


def test_the_committed_kafka_topics_are_the_generators_output() -> None:
    assert (REPO / DEFAULT_PATH).read_text() == kafka_topics_yaml(), (
        "k8s/base/kafka-topics.yaml is out of date: run `python -m voicebus_devstack.kafka_topics`"
    )


def test_the_generator_writes_where_it_is_told(tmp_path: Path) -> None:
    main([str(tmp_path / "topics.yaml")])
    assert (tmp_path / "topics.yaml").read_text() == kafka_topics_yaml()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_have_the_contracts_partitions(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    topics = {
        topic["spec"]["topicName"]: topic for topic in of_kind(rendered[overlay], "KafkaTopic")
    }
    assert {name: t["spec"]["partitions"] for name, t in topics.items()} == {
        topic.name: topic.partitions for topic in ALL_TOPICS
    }
    for topic in ALL_TOPICS:
        config = topics[topic.name]["spec"].get("config", {})
        assert (config.get("cleanup.policy") == "compact") == topic.compacted, topic.name
        assert topics[topic.name]["metadata"]["labels"]["strimzi.io/cluster"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_runs_once_probed_sized_and_stopping_gracefully(
    rendered: dict[str, list[Resource]], overlay: str, services: dict[str, Service]
) -> None:
    resources = rendered[overlay]
    packages = []
    for workload in workloads(resources):
        pod = pod_spec(workload)
        assert pod["terminationGracePeriodSeconds"] > 0
        assert pod["securityContext"]["runAsNonRoot"] is True
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        (container,) = pod["containers"]
        packages.append(package_of(container))
        metrics_port = int(environment(resources, container)["VOICEBUS_METRICS_PORT"])
        assert {"name": "metrics", "containerPort": metrics_port} in container["ports"]
        assert annotations["prometheus.io/port"] == str(metrics_port)
        for probe in PROBES:
            check = container[probe]
            assert check["httpGet"] == {"path": "/healthz", "port": "metrics"}, probe
            # /healthz waits up to the broker ping's timeout, then a second for the loop.
            assert check["timeoutSeconds"] > BROKER_PING_TIMEOUT_S + 1, probe
        resources_ = container["resources"]
        assert {"cpu", "memory"} <= set(resources_["requests"])
        assert "memory" in resources_["limits"]
    assert sorted(packages) == sorted(service.package for service in services.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_a_service_unprivileged(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    for owner, container in containers(rendered[overlay]):
        assert has_main(package_of(container)), owner["metadata"]["name"]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_drains_before_it_stops(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    (gateway,) = [w for w in workloads(resources) if w["metadata"]["name"] == "voicebus-gateway"]
    (container,) = pod_spec(gateway)["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = int(environment(resources, container)["VOICEBUS_GATEWAY_SHUTDOWN_GRACE_S"])
    assert pod_spec(gateway)["terminationGracePeriodSeconds"] > int(pre_stop[1]) + grace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_read_by_its_service(
    rendered: dict[str, list[Resource]], overlay: str, services: dict[str, Service]
) -> None:
    resources = rendered[overlay]
    by_package = {service.package: service for service in services.values()}
    for _, container in containers(resources):
        service = by_package[package_of(container)]
        for variable in container.get("env", []):
            assert service.reads(variable["name"]), f"{service.name}: {variable['name']}"
            if secret := variable.get("valueFrom", {}).get("secretKeyRef"):
                assert secret["key"] == variable["name"], "a secret's key is its variable's name"
    # The ConfigMap is shared: each of its variables is read by one service or another.
    for config_map in of_kind(resources, "ConfigMap"):
        unread = [
            name
            for name in config_map["data"]
            if not any(s.reads(name) for s in by_package.values())
        ]
        assert not unread, f"{config_map['metadata']['name']} sets unread {unread}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_worker_scales_on_the_lag_of_what_its_code_consumes(
    rendered: dict[str, list[Resource]],
    overlay: str,
    consumer_groups: dict[str, set[tuple[str, str]]],
) -> None:
    resources = rendered[overlay]
    partitions = {topic.name: topic.partitions for topic in ALL_TOPICS}
    scaled = {}
    for scaled_object in of_kind(resources, "ScaledObject"):
        target = named(resources, "Deployment", scaled_object["spec"]["scaleTargetRef"]["name"])
        (container,) = pod_spec(target)["containers"]
        service = package_of(container).removeprefix("voicebus_")
        bootstrap = environment(resources, container)["VOICEBUS_KAFKA_BOOTSTRAP"]
        lag = [t["metadata"] for t in scaled_object["spec"]["triggers"] if t["type"] == "kafka"]
        for trigger in lag:
            assert trigger["bootstrapServers"] == bootstrap, service
            assert trigger["offsetResetPolicy"] == "earliest", "as the consumers start"
        scaled[service] = {(trigger["consumerGroup"], trigger["topic"]) for trigger in lag}
        assert scaled_object["spec"]["maxReplicaCount"] <= min(
            partitions[topic] for _, topic in scaled[service]
        ), f"{service}: workers beyond the partitions would sit idle"
    assert scaled == {worker: consumer_groups[worker] for worker in WORKERS}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_scales_on_cpu_and_every_workload_has_a_disruption_budget(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    (autoscaler,) = of_kind(resources, "HorizontalPodAutoscaler")
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "voicebus-gateway",
    }
    assert [m["resource"]["name"] for m in autoscaler["spec"]["metrics"]] == ["cpu"]
    budgets = [
        b["spec"]["selector"]["matchLabels"] for b in of_kind(resources, "PodDisruptionBudget")
    ]
    for workload in workloads(resources):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(selector.items() <= labels.items() for selector in budgets), workload


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_serves_the_public_url_over_long_lived_sockets(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    (ingress,) = of_kind(resources, "Ingress")
    (gateway,) = [w for w in workloads(resources) if w["metadata"]["name"] == "voicebus-gateway"]
    (container,) = pod_spec(gateway)["containers"]
    public_url = urlsplit(environment(resources, container)["VOICEBUS_PUBLIC_URL"])
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == public_url.hostname
    assert (public_url.scheme == "https") == bool(ingress["spec"].get("tls"))
    backend = rule["http"]["paths"][0]["backend"]["service"]
    selector = named(resources, "Service", backend["name"])["spec"]["selector"]
    assert selector.items() <= gateway["spec"]["template"]["metadata"]["labels"].items()
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_as_a_job_and_recordings_are_shared(
    rendered: dict[str, list[Resource]], overlay: str, services: dict[str, Service]
) -> None:
    resources = rendered[overlay]
    (job,) = of_kind(resources, "Job")
    commands = [container["command"] for _, container in containers([job])]
    assert sorted(commands) == sorted(
        ["python", "-m", s.package, "migrate"] for s in services.values() if s.migrated
    )
    claims = set()
    for workload in workloads(resources):
        (container,) = pod_spec(workload)["containers"]
        if package_of(container) not in ("voicebus_gateway", "voicebus_analytics"):
            continue
        directory = environment(resources, container)["VOICEBUS_RECORDINGS_DIR"]
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
        (volume,) = [v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"]]
        claims.add(volume["persistentVolumeClaim"]["claimName"])
    assert len(claims) == 1, "the gateway writes recordings where analytics serves them from"
