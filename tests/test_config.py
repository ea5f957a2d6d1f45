"""One configuration model per component: files, the manifest, and CLI options agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from pydantic import ValidationError

from prist_builder.llm.settings import LLMSettings
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.providers.openai.config import OpenAIProviderConfig
from prist_builder.testing.synthetic import write_synthetic

STEP_FILES = ("elements.jsonl", "trees.jsonl", "dialogues.jsonl", "rejects.jsonl")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    write_synthetic(folder, 3)
    return folder


def _files(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in STEP_FILES}


def test_a_run_is_reproduced_from_its_manifest_alone(inputs: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    assert run_cli("build", "all", "--labelme", inputs, "--run", first, "--seed", 7, "--min-turns", 4).exit_code == 0
    again = tmp_path / "again"
    result = run_cli("build", "all", "--config", first / "manifest.json", "--run", again)
    assert result.exit_code == 0, result.output
    assert _files(again) == _files(first)
    recorded = json.loads((again / "manifest.json").read_text())["config"]
    assert (recorded["seed"], recorded["min_turns"]) == (7, 4)


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_settings_files_load_and_flags_win(inputs: Path, tmp_path: Path, suffix: str) -> None:
    text = f'labelme = "{inputs}"\nseed = 3\n' if suffix == ".toml" else f"labelme: {inputs}\nseed: 3\n"
    settings = tmp_path / f"build{suffix}"
    settings.write_text(text)
    run = tmp_path / "run"
    result = run_cli("build", "all", "--config", settings, "--run", run, "--seed", 5)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "manifest.json").read_text())["config"]
    assert config["seed"] == 5 and config["labelme"] == str(inputs.resolve())


def test_a_broken_settings_file_is_one_line_naming_it(inputs: Path, tmp_path: Path) -> None:
    settings = tmp_path / "bad.toml"
    settings.write_text("seed = [unclosed\n")
    result = run_cli("build", "all", "--config", settings, "--run", tmp_path / "run")
    assert result.exit_code == 2 and "bad.toml" in result.output
    settings.write_text(f'labelme = "{inputs}"\nmin_turns = 0\n')
    result = run_cli("build", "all", "--config", settings, "--run", tmp_path / "run")
    assert result.exit_code == 2 and "min_turns" in result.output


def test_openai_options_are_validated_by_the_model(inputs: Path, tmp_path: Path) -> None:
    result = run_cli(
        "build",
        "all",
        "--labelme",
        inputs,
        "--run",
        tmp_path / "run",
        "--provider",
        "openai",
        "--detail",
        "huge",
        "--dry-run",
    )
    assert result.exit_code == 2 and "detail" in result.output
    with pytest.raises(ValidationError, match="concurrency"):
        OpenAIProviderConfig(concurrency=0)
    with pytest.raises(ValidationError, match="provider_options"):
        BuildConfig(provider="offline", labelme=str(inputs), provider_options={"model": "x"})


def test_environment_is_read_by_the_settings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    settings = LLMSettings()
    assert settings.resolved_base_url() == "http://127.0.0.1:9/v1"
    assert settings.resolved_api_key() == "sk-from-env-123456"
    dumped = json.dumps(OpenAIProviderConfig(api_key="sk-flag-123456").model_dump(mode="json"))
    assert "sk-" not in dumped and "api_key" not in dumped  # never in a manifest


def test_extra_headers_reach_the_server_and_are_never_written(inputs: Path, tmp_path: Path) -> None:
    from openai_helpers import openai_args

    from prist_builder.testing import FakeOpenAIServer
    from prist_builder.testing.fake_openai.prist_model import prist_responder

    run = tmp_path / "run"
    secret = "gw-token-0123456789"
    with FakeOpenAIServer(responder=prist_responder) as server:
        result = run_cli(
            *openai_args(
                server,
                run,
                inputs,
                "--header",
                f"X-Gateway-Key: {secret}",
                "--header",
                "X-Team: vision",
                "--cache-dir",
                tmp_path / "cache",
            )
        )
        assert result.exit_code == 0, result.output
        sent = [entry[1]["headers"] for entry in server.log if entry[0] == "chat"]
    assert sent and all(h.get("x-gateway-key") == secret and h.get("x-team") == "vision" for h in sent)
    for path in run.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    bad = run_cli(
        "build",
        "all",
        "--labelme",
        inputs,
        "--run",
        tmp_path / "bad",
        "--provider",
        "openai",
        "--header",
        "no colon here",
        "--dry-run",
    )
    assert bad.exit_code == 2 and "header" in bad.output
