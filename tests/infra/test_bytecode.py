"""Staging our code with bytecode for the runtime: found interpreter, unchecked-hash, kept while current."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import bytecode


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if bytecode.runtime_python() is None:
        pytest.skip(f"no Python {bytecode.PYTHON_VERSION} on this machine")
    functions = tmp_path / "functions" / "demo_api"
    functions.mkdir(parents=True)
    (functions / "handler.py").write_text("ANSWER = 42\n")
    (functions / "__pycache__").mkdir()
    (functions / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"stale, from another Python")
    core = tmp_path / "core" / "python" / "orders_core"
    core.mkdir(parents=True)
    (core / "__init__.py").write_text("")
    staged = tmp_path / "build" / "assets"
    monkeypatch.setattr(bytecode, "FUNCTIONS_DIR", tmp_path / "functions")
    monkeypatch.setattr(bytecode, "CORE_SOURCES", tmp_path / "core" / "python")
    monkeypatch.setattr(bytecode, "STAGED_DIR", staged)
    monkeypatch.setattr(bytecode, "STAGED_FUNCTIONS", staged / "functions")
    monkeypatch.setattr(bytecode, "STAGED_CORE_LAYER", staged / "core")
    monkeypatch.setattr(bytecode, "_STAMP", staged / "stamp.json")
    monkeypatch.setattr(bytecode, "ROOT", tmp_path)
    return tmp_path


def _compiled(staged: Path) -> Path:
    return staged / "functions" / "demo_api" / "__pycache__" / f"handler.{bytecode.BYTECODE_TAG}.pyc"


def test_staged_code_carries_unchecked_bytecode_for_the_runtime_only(sources: Path) -> None:
    assert bytecode.stage_code() == bytecode.BYTECODE_TAG
    staged = sources / "build" / "assets"
    header = _compiled(staged).read_bytes()[:8]
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source not checked
    assert not (staged / "functions" / "demo_api" / "__pycache__" / "handler.cpython-311.pyc").exists()
    assert (staged / "core" / "python" / "orders_core" / "__pycache__").is_dir()


def test_staging_is_kept_while_the_sources_are_unchanged_and_redone_when_one_changes(sources: Path) -> None:
    bytecode.stage_code()
    staged = sources / "build" / "assets"
    first = _compiled(staged).stat().st_mtime_ns
    bytecode.stage_code()
    assert _compiled(staged).stat().st_mtime_ns == first
    (sources / "functions" / "demo_api" / "handler.py").write_text("ANSWER = 43\n")
    bytecode.stage_code()
    assert (staged / "functions" / "demo_api" / "handler.py").read_text() == "ANSWER = 43\n"
    assert _compiled(staged).stat().st_mtime_ns != first


def test_without_the_runtime_python_bytecode_is_required_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bytecode, "runtime_python", lambda: None)
    monkeypatch.setenv(bytecode.REQUIRE_VARIABLE, "1")
    with pytest.raises(bytecode.NoRuntimeInterpreter, match="without bytecode"):
        bytecode.compiler()
    monkeypatch.setenv(bytecode.REQUIRE_VARIABLE, "0")
    assert bytecode.compiler() is None
