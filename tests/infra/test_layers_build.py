"""The dependencies layer build: right platform, pinned to the venv, rebuilt only when stale."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from infra import layers_build


def test_pip_targets_lambda_not_this_machine(tmp_path: Path) -> None:
    command = layers_build.pip_command(tmp_path)
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert f"--python-version {layers_build.PYTHON_VERSION}" in joined
    assert "--implementation cp" in joined
    assert "--only-binary=:all:" in command
    assert "--no-compile" in command
    assert command[command.index("--target") + 1] == str(tmp_path / "python")


def test_requirements_are_pinned_to_the_virtualenv() -> None:
    assert layers_build.requirements() == [
        f"pydantic=={metadata.version('pydantic')}",
        f"aws-lambda-powertools=={metadata.version('aws-lambda-powertools')}",
    ]


def test_local_only_packages_stay_out() -> None:
    names = {r.split("==")[0].lower() for r in layers_build.requirements()}
    assert not names & {"boto3", "moto", "pyjwt", "werkzeug"}


def _fake_layer(tmp_path: Path, inputs: dict[str, object]) -> tuple[Path, Path]:
    layer, stamp = tmp_path / "deps", tmp_path / "deps.json"
    (layer / "python").mkdir(parents=True)
    stamp.write_text(json.dumps(inputs))
    return layer, stamp


def test_a_current_layer_is_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer, stamp = _fake_layer(tmp_path, layers_build.build_inputs())

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run for a current layer")

    monkeypatch.setattr(layers_build.subprocess, "run", no_network)
    assert layers_build.is_current(layer, stamp)
    assert layers_build.build(layer_dir=layer, stamp=stamp) is False


def test_a_layer_built_from_other_versions_is_stale(tmp_path: Path) -> None:
    inputs = {**layers_build.build_inputs(), "requirements": ["pydantic==1.0"]}
    layer, stamp = _fake_layer(tmp_path, inputs)
    assert not layers_build.is_current(layer, stamp)
    assert not layers_build.is_current(tmp_path / "missing", stamp)


def test_a_failed_build_leaves_the_old_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer, stamp = _fake_layer(tmp_path, {"stale": True})
    (layer / "python" / "old.py").write_text("")

    def failing(*args: object, **kwargs: object) -> None:
        raise layers_build.subprocess.CalledProcessError(1, "pip")

    monkeypatch.setattr(layers_build.subprocess, "run", failing)
    with pytest.raises(layers_build.subprocess.CalledProcessError):
        layers_build.build(layer_dir=layer, stamp=stamp)
    assert (layer / "python" / "old.py").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".deps-")]
