"""docker-compose.yml: valid by the Compose Specification's JSON schema (vendored, see
schemas/README.md), and true to the code: every service it runs exists and is run once, every
variable it sets is one that service reads, every service waits for the migrations, and each
health check asks the port the service answers it on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from .conftest import REPO, Service, has_main

COMPOSE = REPO / "docker-compose.yml"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as Compose reads it (YAML anchors and merge keys resolved)."""
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def runs(definition: dict[str, Any]) -> tuple[str, list[str]] | None:
    """The voicebus package a compose service runs (`python -m <package> <args>`) and its
    arguments; None for the infrastructure."""
    match definition.get("command"):
        case ["python", "-m", str(package), *args] if package.startswith("voicebus_"):
            return package, args
    return None


def voicebus_services(compose: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Compose service name: (package, arguments), for every service running voicebus code."""
    return {
        name: ran
        for name, definition in compose["services"].items()
        if (ran := runs(definition)) is not None
    }


def long_running(compose: dict[str, Any]) -> dict[str, str]:
    """Compose service name: package, for the services (not the one-shot migrations)."""
    return {
        name: package for name, (package, args) in voicebus_services(compose).items() if not args
    }


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in jsonschema.Draft202012Validator(schema).iter_errors(compose)
    ]
    assert not errors, "\n".join(errors)


def test_every_service_runs_once_by_its_module(
    compose: dict[str, Any], services: dict[str, Service]
) -> None:
    packages = list(long_running(compose).values())
    assert sorted(packages) == sorted(service.package for service in services.values())
    for package, _ in voicebus_services(compose).values():
        assert has_main(package), f"python -m {package} would not run"


def test_every_variable_set_is_read_by_its_service(
    compose: dict[str, Any], services: dict[str, Service]
) -> None:
    by_package = {service.package: service for service in services.values()}
    for name, (package, _) in voicebus_services(compose).items():
        service = by_package[package]
        unread = [
            variable
            for variable in compose["services"][name].get("environment", {})
            if not service.reads(variable)
        ]
        assert not unread, f"{name} sets variables {service.name} does not read: {unread}"


def test_every_service_waits_for_every_migration(
    compose: dict[str, Any], services: dict[str, Service]
) -> None:
    migrations = {
        package: name
        for name, (package, args) in voicebus_services(compose).items()
        if args == ["migrate"]
    }
    migrated = {service.package for service in services.values() if service.migrated}
    assert set(migrations) == migrated
    for name in long_running(compose):
        depends_on = compose["services"][name]["depends_on"]
        for migration in migrations.values():
            assert depends_on[migration] == {"condition": "service_completed_successfully"}, name
        for infrastructure in ("kafka", "redis"):
            assert depends_on[infrastructure] == {"condition": "service_healthy"}, name


def test_each_health_check_asks_where_its_service_answers(compose: dict[str, Any]) -> None:
    for name, package in long_running(compose).items():
        definition = compose["services"][name]
        environment = definition["environment"]
        # The gateway's own /healthz is the stack's (every service beat recently); the others
        # answer /healthz on their metrics port.
        port_variable = (
            "VOICEBUS_PORT" if package == "voicebus_gateway" else "VOICEBUS_METRICS_PORT"
        )
        url = f"http://127.0.0.1:{environment[port_variable]}/healthz"
        assert url in " ".join(definition["healthcheck"]["test"]), name
