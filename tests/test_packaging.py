"""The installed wheel claims no generic top-level import name and works from a folder
holding a user's own ``prompts.py``, ``annotation.py`` and ``model.py`` (issue: redesign 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from prist_builder.testing import FakeOpenAIServer
from prist_builder.testing.fake_openai.prist_model import prist_responder
from prist_builder.testing.synthetic import write_synthetic

REPO = Path(__file__).resolve().parents[1]
ALLOWED_TOP_LEVEL = {"prist_builder"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel: ``$PRIST_WHEEL`` when ``make test`` built it, else built here."""
    given = os.environ.get("PRIST_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("prist-*.whl"))


def test_wheel_top_level_names_are_only_the_project(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == ALLOWED_TOP_LEVEL
    for folder in ("annotation", "prompts", "model"):  # the root folders install under the namespace
        assert any(n.startswith(f"prist_builder/{folder}/__init__.py") for n in names), folder
    assert "prist_builder/prompts/tree.md" in names and "prist_builder/demo/labelme/astronaut.json" in names


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    roots = {
        "prist_builder": REPO / "prist_builder",
        "prist_builder.annotation": REPO / "annotation",
        "prist_builder.prompts": REPO / "prompts",
        "prist_builder.model": REPO / "model",
    }
    found = set()
    for name, root in roots.items():
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            found.add(".".join((name, *relative)) if relative else name)
    assert found <= listed, f"folders missing from [tool.setuptools] packages: {sorted(found - listed)}"


def test_installed_wheel_builds_with_openai_beside_shadowing_modules(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    # the dependencies come from the test environment's site-packages (not its editable prist)
    (site / "_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    work = tmp_path / "user"
    work.mkdir()
    for shadow in ("prompts", "annotation", "model"):
        (work / f"{shadow}.py").write_text(f"raise ImportError('the user\\'s own {shadow}.py was imported')\n")
    labelme = tmp_path / "labelme"
    write_synthetic(labelme, 1)
    with FakeOpenAIServer(responder=prist_responder) as server:
        result = subprocess.run(
            [
                str(python),
                "-m",
                "prist_builder",
                "build",
                "all",
                "--provider",
                "openai",
                "--labelme",
                str(labelme),
                "--run",
                str(work / "run"),
                "--base-url",
                server.base_url,
                "--cache-dir",
                str(tmp_path / "cache"),
            ],
            cwd=work,
            capture_output=True,
            text=True,
            env={**os.environ, "OPENAI_API_KEY": "sk-test", "COLUMNS": "120"},
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    located = subprocess.run(
        [str(python), "-c", "import prist_builder.prompts as p; print(p.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert located.startswith(str(site))
    assert (work / "run" / "dialogues.jsonl").read_text().count("\n") >= 2


def _declared() -> set[str]:
    """Distribution names in dependencies and every extra, normalised."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    names = set()
    for spec in specs:
        name = spec.split(";")[0].split("[")[0]
        for stop in "<>=!~ ":
            name = name.split(stop)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def test_every_third_party_import_is_declared() -> None:
    import ast
    from importlib.metadata import packages_distributions

    provided = packages_distributions()
    declared = _declared()
    missing = {}
    for root in ("prist_builder", "annotation", "prompts", "model"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("prist_builder", "__future__"):
                        continue
                    dists = {d.lower().replace("_", "-") for d in provided.get(top, [top])}
                    if not dists & declared:
                        missing.setdefault(top, str(path.relative_to(REPO)))
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
