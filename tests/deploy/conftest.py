"""What the deployment files are checked against: the services as the code defines them (their
packages, the environment variables their settings read, their database migrations), and the
Kubernetes overlays as kustomize renders them. Offline: no Docker engine, no cluster."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from voicebus_contracts.agents import SECRET_ENV_PREFIX
from voicebus_runtime.settings import BusSettings

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
READ_BY_LIBRARIES = ("OTEL_",)
"""Variables read by a library itself, not by a settings class (the OpenTelemetry SDK)."""


@dataclass(frozen=True)
class Service:
    """A voicebus service as the code defines it."""

    name: str
    package: str
    variables: frozenset[str]
    """Every environment variable its settings read."""
    variable_prefixes: tuple[str, ...]
    """Families of variables it reads by prefix."""
    migrated: bool
    """It has an Alembic history of its own (`python -m voicebus_<name> migrate`)."""

    def reads(self, variable: str) -> bool:
        return variable in self.variables or variable.startswith(self.variable_prefixes)


def variables_of(settings: type[BaseSettings]) -> set[str]:
    """The environment variables a pydantic-settings class reads: its prefix and each field's
    name, or the field's aliases where it has them (they replace the prefixed name)."""
    prefix = settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def settings_classes(package: str) -> list[type[BaseSettings]]:
    """The settings classes defined in the package's `settings` modules (the service's own
    and those of its subpackages, such as the agent's catalog)."""
    root = importlib.import_module(package)
    modules = [f"{package}.settings"] + [
        info.name
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")
        if info.name.endswith(".settings") and info.name != f"{package}.settings"
    ]
    classes: list[type[BaseSettings]] = []
    for name in modules:
        module = importlib.import_module(name)
        classes += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.__module__ == name
        ]
    return classes


def _service(directory: Path) -> Service:
    name = directory.name
    package = f"voicebus_{name}"
    classes: list[type[BaseSettings]] = [BusSettings, *settings_classes(package)]
    variables = frozenset().union(*(variables_of(settings) for settings in classes))
    source = directory / "src" / package
    # Agents' secrets (tool headers, webhook signing) are read by name when used.
    secrets = (SECRET_ENV_PREFIX,) if name in ("agent", "analytics") else ()
    return Service(
        name=name,
        package=package,
        variables=variables,
        variable_prefixes=(*READ_BY_LIBRARIES, *secrets),
        migrated=any(source.rglob("alembic.ini")),
    )


@pytest.fixture(scope="session")
def services() -> dict[str, Service]:
    """Every service under services/, by name."""
    return {
        directory.name: _service(directory)
        for directory in sorted((REPO / "services").iterdir())
        if (directory / "pyproject.toml").is_file()
    }


def has_main(package: str) -> bool:
    """`python -m <package>` runs something."""
    return importlib.util.find_spec(f"{package}.__main__") is not None


def kustomize_command() -> list[str]:
    """kubectl's built-in kustomize, or kustomize itself (on PATH or in .tools/bin)."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    tools = REPO / ".tools" / "bin"
    if kustomize := shutil.which("kustomize") or shutil.which("kustomize", path=tools):
        return [kustomize, "build"]
    pytest.fail(
        "rendering k8s/ needs kubectl (1.27 or later) or kustomize 5 on PATH or in .tools/bin: "
        "https://kubectl.docs.kubernetes.io/installation/kustomize/"
    )


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Each overlay's resources, as `kubectl kustomize k8s/overlays/<name>` renders them."""
    command = kustomize_command()
    overlays: dict[str, list[dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        out = subprocess.run(
            [*command, str(REPO / "k8s" / "overlays" / overlay)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        overlays[overlay] = [doc for doc in yaml.safe_load_all(out) if doc]
    return overlays
