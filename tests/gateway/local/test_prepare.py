"""`tiergate models prepare`: idempotence, hash checks and atomicity.

The real dequantization takes about 20 s and is exercised by the end-to-end fixture (which then
serves the result with vLLM); here the converter is replaced by one that writes two small files, so
the bookkeeping around it is tested in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.local import prepare as prep
from gateway.local.cli import register


@pytest.fixture
def fake_convert(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []

    def convert(source: Path, out: Path) -> None:
        calls.append(out)
        (out / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
        (out / "model.safetensors").write_bytes(b"weights")

    monkeypatch.setattr(prep, "_convert", convert)
    return calls


def test_the_source_gguf_is_found_without_importing_its_package() -> None:
    path, recorded = prep.find_source_gguf()
    assert path.name == prep.SOURCE_FILE
    assert recorded is not None and len(recorded) == 64


def test_a_second_run_is_a_no_op(tmp_path: Path, fake_convert: list[Path]) -> None:
    first = prep.prepare(tmp_path, progress=False)
    assert first.rebuilt and first.path == tmp_path / prep.MODEL_NAME
    manifest = json.loads((first.path / prep.MANIFEST).read_text())
    source, _ = prep.find_source_gguf()
    assert manifest["source"]["sha256"] == prep.sha256_file(source)
    assert set(manifest["files"]) == {"config.json", "model.safetensors"}

    second = prep.prepare(tmp_path, progress=False)
    assert not second.rebuilt
    assert len(fake_convert) == 1


def test_force_and_a_damaged_output_rebuild(tmp_path: Path, fake_convert: list[Path]) -> None:
    prep.prepare(tmp_path, progress=False)
    assert prep.prepare(tmp_path, force=True, progress=False).rebuilt
    (tmp_path / prep.MODEL_NAME / "model.safetensors").write_bytes(b"truncated")
    assert prep.prepare(tmp_path, progress=False).rebuilt
    (tmp_path / prep.MODEL_NAME / "config.json").unlink()
    assert prep.prepare(tmp_path, progress=False).rebuilt
    assert len(fake_convert) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".{prep.MODEL_NAME}.lock",
        prep.MODEL_NAME,
    ]


def test_a_failed_build_leaves_the_previous_checkpoint(
    tmp_path: Path, fake_convert: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    prep.prepare(tmp_path, progress=False)
    before = (tmp_path / prep.MODEL_NAME / prep.MANIFEST).read_text()

    def crash(source: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(prep, "_convert", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        prep.prepare(tmp_path, force=True, progress=False)
    assert (tmp_path / prep.MODEL_NAME / prep.MANIFEST).read_text() == before
    assert not list(tmp_path.glob(".*.build-*"))


def test_cache_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERGATE_MODELS_DIR", str(tmp_path))
    assert prep.default_cache_dir() == tmp_path
    monkeypatch.delenv("TIERGATE_MODELS_DIR")
    assert prep.default_cache_dir().parts[-3:] == (".cache", "tiergate", "models")


def test_the_command_reports_a_no_op(
    tmp_path: Path, fake_convert: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["models", "prepare", "--cache-dir", str(tmp_path)])
    assert args.func(args) == 0
    assert "prepared" in capsys.readouterr().out
    assert args.func(args) == 0
    assert "up to date" in capsys.readouterr().out


def test_requests_default_to_greedy_and_a_token_limit(tmp_path: Path) -> None:
    path = tmp_path / "generation_config.json"
    path.write_text(json.dumps({"do_sample": True, "top_p": 0.9, "eos_token_id": 2}))
    prep._set_request_defaults(path)
    assert json.loads(path.read_text()) == {
        "eos_token_id": 2,
        "temperature": 0.0,
        "max_new_tokens": 512,
    }
