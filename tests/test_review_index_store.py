"""The ``prist review`` index kept beside the run: built once, reused, rebuilt when the run changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from prist_builder.records.curation import REVIEWS_FILE
from prist_builder.review import index_store
from prist_builder.review.index import Filters, RunIndex
from prist_builder.samples import iter_samples
from prist_builder.testing.synthetic import write_synthetic


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("index")
    write_synthetic(root / "in", 4, seed=7)
    assert run_cli("build", "all", "--labelme", root / "in", "--run", root / "run").exit_code == 0
    return root / "run"


@pytest.fixture
def run(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(built, copy)
    return copy


def test_second_start_reads_the_stored_index(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = RunIndex.load(run)
    assert not first.from_disk and (run / index_store.INDEX_FILE).is_file()

    def no_rebuild(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the index was built again")

    monkeypatch.setattr(index_store, "build_index", no_rebuild)
    second = RunIndex.load(run)
    assert second.from_disk and second.rows == first.rows and second.images == first.images
    # every sample joined from the stored offsets equals the full join of the run
    for expected in iter_samples(run):
        got = second.sample(expected.sample_id)
        assert got is not None and got.dialogue == expected.dialogue and got.tree == expected.tree
        assert got.mask == expected.mask and got.image == expected.image
    assert len(second.select(Filters())) == len(first.rows)


def test_a_changed_run_file_rebuilds_the_index(run: Path) -> None:
    first = RunIndex.load(run)
    lines = (run / "dialogues.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (run / "dialogues.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    second = RunIndex.load(run)
    assert not second.from_disk and len(second.rows) == len(first.rows) - 1
    assert RunIndex.load(run).from_disk  # and stored again


def test_a_torn_or_foreign_index_is_rebuilt(run: Path) -> None:
    RunIndex.load(run)
    (run / index_store.INDEX_FILE).write_text('{"version": 1, "rows": [', encoding="utf-8")
    assert not RunIndex.load(run).from_disk
    data = json.loads((run / index_store.INDEX_FILE).read_text(encoding="utf-8"))
    data["version"] = 0
    (run / index_store.INDEX_FILE).write_text(json.dumps(data), encoding="utf-8")
    assert not RunIndex.load(run).from_disk


def test_reviews_fold_over_a_stored_index(run: Path) -> None:
    RunIndex.load(run)
    sample = next(iter(iter_samples(run)))
    decision = {"sample_id": sample.sample_id, "reviewer": "r", "time": "2026-01-01T00:00:00+00:00", "action": "accept"}
    (run / REVIEWS_FILE).write_text(json.dumps(decision) + "\n", encoding="utf-8")
    index = RunIndex.load(run)
    assert index.from_disk  # reviews.jsonl is not part of the stored index
    assert index.sample(sample.sample_id).review.status == "accepted"
    assert index.status_counts()["accepted"] == 1


START = """
import json, sys
from starlette.testclient import TestClient
from prist_builder.review.app import create_app
app = create_app(sys.argv[1], "r")
assert TestClient(app, base_url="http://127.0.0.1").get("/").status_code == 200
print(json.dumps({"from_disk": app.state.review.index.from_disk,
                  "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def test_start_on_a_stored_index_loads_no_heavy_library(run: Path) -> None:
    """Start-up (app created, first page served) reads the stored index and nothing heavy:
    numpy, Pillow, pycocotools and networkx load with the first photo, mask or tree."""
    RunIndex.load(run)  # stores the index
    done = subprocess.run([sys.executable, "-c", START, str(run)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["from_disk"]
    assert not {"numpy", "PIL", "pycocotools", "networkx", "scipy"} & set(seen["modules"])


def test_stored_index_is_compact_and_keeps_no_image_records(run: Path) -> None:
    index = RunIndex.load(run)
    text = (run / index_store.INDEX_FILE).read_text(encoding="utf-8")
    assert "\n  " not in text and '"images"' not in text  # one compact line; photos read by offset
    stored = json.loads(text)
    assert stored["version"] == index_store.INDEX_VERSION and stored["fields"] == list(index_store.ROW_FIELDS)
    for sample in iter_samples(run):  # the photo's record, read from its elements line, is the run's
        assert index.images[sample.image.image_id] == sample.image.model_copy(update={"regions": []})
