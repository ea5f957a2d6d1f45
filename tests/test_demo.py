"""``prist demo`` on a fresh install: real bundled photos, offline, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import check_run, run_cli
from PIL import Image

from prist_builder.demo import LABELME_DIR, annotated_photos, photo_path


def test_every_demo_photo_ships_with_an_installed_package() -> None:
    names = annotated_photos()
    assert len(names) >= 4
    for path in sorted(LABELME_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        with Image.open(photo_path(doc["imagePath"])) as image:
            assert (image.height, image.width) == (doc["imageHeight"], doc["imageWidth"])
        usable = [s for s in doc["shapes"] if s["label"] != "__ignore__"]
        assert len(usable) >= 4, f"{path.name}: too few regions for a varied demo"


def test_demo_builds_validated_records_and_previews(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_cli("demo", "--out", out)
    assert result.exit_code == 0, result.output
    records = check_run(out / "run")
    assert len(records["dialogues"]) >= 10
    assert len({d.image_id for d in records["dialogues"]}) >= 4
    assert records["rejects"] == []
    assert "Avg. / max. turns" in result.output and str(out / "run") in result.output.replace("\n", "")
    previews = sorted((out / "previews").glob("*.png"))
    assert any(p.name.endswith("-tree.png") for p in previews)
    assert any(not p.name.endswith("-tree.png") for p in previews)
    for preview in previews:
        with Image.open(preview) as image:
            assert image.width > 300 and image.height > 200
    before = (out / "run" / "dialogues.jsonl").read_bytes()
    again = run_cli("demo", "--out", out)  # a second run resumes: nothing left to do
    assert again.exit_code == 0
    assert (out / "run" / "dialogues.jsonl").read_bytes() == before
    rows = [line.split("│") for line in again.output.splitlines() if line.startswith("│ ")]
    assert {
        cells[1].strip(): int(cells[2]) for cells in rows if cells[1].strip() in ("elements", "trees", "dialogues")
    } == {"elements": 0, "trees": 0, "dialogues": 0}
