"""The Dockerfile, read as text (there is no Docker engine to build it in the tests): one image
that runs every service, built from the lock without the dev group, with the Whisper model
assembled in it, small and not run as root."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field

import pytest

from .conftest import REPO, Service, has_main

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BUILD_TOOLS = ("apt-get", "apk ", "gcc", "g++", "build-essential", "make ")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)
    """(INSTRUCTION, arguments), continuation lines joined."""

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def env(self) -> dict[str, str]:
        pairs = (pair.split("=", 1) for args in self.all("ENV") for pair in shlex.split(args))
        return {key: value for key, value in pairs}


def stages() -> list[Stage]:
    """The Dockerfile's build stages, in order."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: list[Stage] = []
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            base, _, name = args.partition(" AS ")
            found.append(Stage(base=base.strip(), name=name.strip() or None))
        elif found:
            found[-1].instructions.append((instruction, args.strip()))
    return found


@pytest.fixture(scope="module")
def final() -> Stage:
    return stages()[-1]


@pytest.fixture(scope="module")
def builder() -> Stage:
    (stage,) = [stage for stage in stages() if stage.name == "builder"]
    return stage


def test_the_image_runs_as_a_user_not_root(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the image's last stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_the_image_is_a_slim_python_with_no_build_tools(final: Stage) -> None:
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim-\w+", final.base)
    for command in final.all("RUN"):
        assert not any(tool in command for tool in BUILD_TOOLS), command
    assert "--from=builder /opt/voicebus /opt/voicebus" in final.all("COPY")


def test_the_builder_installs_every_service_from_the_lock(
    builder: Stage, services: dict[str, Service]
) -> None:
    (sync,) = [command for command in builder.all("RUN") if "uv sync" in command]
    options = shlex.split(sync)
    assert {"--frozen", "--no-dev", "--no-editable"} <= set(options)
    packages = {options[i + 1] for i, option in enumerate(options) if option == "--package"}
    assert packages == {f"voicebus-{name}" for name in services}


def test_every_service_runs_by_its_module(services: dict[str, Service], final: Stage) -> None:
    for service in services.values():
        assert has_main(service.package), f"python -m {service.package} would not run"
    (cmd,) = final.all("CMD")
    assert cmd.startswith('["python", "-m", "voicebus_')


def test_stt_uses_the_model_assembled_at_build_time(builder: Stage, final: Stage) -> None:
    model_dir = final.env()["VOICEBUS_STT_MODEL_DIR"]
    (assembly,) = [command for command in builder.all("RUN") if "assemble_bundled_model" in command]
    assert f"assemble_bundled_model(Path('{model_dir}'))" in assembly
    assert model_dir.startswith("/opt/voicebus/"), "the final stage copies /opt/voicebus only"
    assert final.env()["HF_HUB_OFFLINE"] == "1"


def test_the_build_context_leaves_out_local_state_and_keeps_the_workspace() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern.removeprefix("**/")) for pattern in patterns)

    for local in (".venv", ".git", ".tools", ".voicebus"):
        assert ignored(local), f"{local} would be sent to the Docker daemon"
    for needed in ("pyproject.toml", "uv.lock", "libs", "services", "tools"):
        assert not ignored(needed), f"the build needs {needed}"
