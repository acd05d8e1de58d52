"""What can be checked of the container image without a Docker engine."""

import json
import subprocess
import tomllib

import pytest

from tests.support.processes import ROOT, VENV_BIN

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_hadolint_finds_nothing_to_fix() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_runtime_image_is_python_3_13_slim() -> None:
    _keyword, arguments = _final_stage()[0]
    assert arguments.split()[0] == "python:3.13-slim"


def test_the_runtime_image_runs_as_a_non_root_user() -> None:
    users = [arguments for keyword, arguments in _final_stage() if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_the_entry_point_is_the_botsmith_console_script_serving() -> None:
    final = dict(_final_stage())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = json.loads(final["ENTRYPOINT"])
    assert entrypoint == ["botsmith"]
    assert scripts["botsmith"] == "app.cli:main"
    assert json.loads(final["CMD"]) == ["serve"]


def test_the_metrics_directory_is_on_a_writable_path() -> None:
    env = " ".join(arguments for keyword, arguments in _final_stage() if keyword == "ENV")
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/" in env


@pytest.mark.parametrize("tool", ["gcc", "build-essential", "apt-get install"])
def test_the_runtime_stage_installs_no_compilers(tool: str) -> None:
    runs = " ".join(arguments for keyword, arguments in _final_stage() if keyword == "RUN")
    assert tool not in runs
