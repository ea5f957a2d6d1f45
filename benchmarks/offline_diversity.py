"""Diversity of the offline provider's dialogues at the released split's sample size.

``prist stats --reference`` measures distinct-n on equal-size samples (distinct-n falls as a
sample grows). The released test split has 508 dialogues over 169 images; the Labelme
fixtures have 4 images (12 dialogues). So this benchmark builds, offline, two sets of about
508 dialogues and measures distinct-1/2 at 508 against the released split:

- ``fixtures x seeds``: the 4 Labelme fixture images under 43 image ids (each id draws its
  own wording), the same scenes over and over, a lower bound;
- ``synthetic labels``: 172 synthetic Labelme images whose regions carry labels drawn from
  the whole knowledge table, new scenes each time;
- ``COCO labels``: the same images with labels drawn from COCO's 80 category names, a fixed
  outside vocabulary (so growing the knowledge table with other categories does not raise it);

and the released split itself as the baseline. Issue 19's target is distinct-2 >= 0.6 (:data:`TARGET`)
on unseen data: the two synthetic sets are the fair tests (the fixtures set repeats the same
four images), and their rows say whether they meet the target. Run: ``python benchmarks/run.py offline_diversity``.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from prist_builder.stats_reference import diversity, load

TITLE = "offline dialogues: distinct-n of assistant text at the released split's sample size (508)"
FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures"
SAMPLE = 508
TARGET = 0.6
"""Issue 19: distinct-2 of the offline dialogues on unseen Labelme data at the released split's sample size."""


def _build(folder: Path, run: Path) -> list:
    from typer.testing import CliRunner

    from prist_builder.cli import app

    result = CliRunner().invoke(app, ["build", "all", "--labelme", str(folder), "--run", str(run), "--workers", "2"])
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    return load(run)


def _fixture_copies(folder: Path, copies: int) -> None:
    for name in ("labelme_voc", "labelme_tutorial"):
        for path in (FIXTURES / name).iterdir():
            if path.suffix == ".json":
                for copy in range(copies):
                    (folder / f"c{copy}_{path.name}").symlink_to(path)
            else:
                (folder / path.name).symlink_to(path)


COCO_LABELS = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign"
    " parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella"
    " handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard"
    " surfboard tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange"
    " broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop"
    " mouse remote keyboard cell_phone microwave oven toaster sink refrigerator book clock vase scissors"
    " teddy_bear hair_drier toothbrush"
).split()
"""COCO's 80 object category names (``_`` for a space), as its instances annotations list them."""


def _synthetic(folder: Path, count: int, labels: list[str] | None = None) -> None:
    from prist_builder.providers.offline.knowledge import table
    from prist_builder.testing.synthetic import write_synthetic

    write_synthetic(folder, count, seed=11, size=(480, 360), shapes=(3, 5))
    names, rng = labels or sorted(table()), random.Random(3)
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        for shape in doc["shapes"]:
            shape["label"] = rng.choice(names)
        path.write_text(json.dumps(doc))


def run() -> list[dict[str, str]]:
    """One row per set: dialogues, distinct-1, distinct-2, vocabulary, ratio of distinct-2 to the released
    split's, and distinct-2 against :data:`TARGET` (ratio, met or not)."""
    reference = load(FIXTURES / "prist_official" / "test.json")
    base = diversity(reference, SAMPLE, 0)
    rows = [("released test split", len(reference), base)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "fx").mkdir()
        _fixture_copies(root / "fx", 43)
        built = _build(root / "fx", root / "fx-run")
        rows.append(("offline, fixtures x seeds", len(built), diversity(built, SAMPLE, 0)))
        _synthetic(root / "syn", 172)
        built = _build(root / "syn", root / "syn-run")
        rows.append(("offline, synthetic labels", len(built), diversity(built, SAMPLE, 0)))
        _synthetic(root / "coco", 172, [name.replace("_", " ") for name in COCO_LABELS])
        built = _build(root / "coco", root / "coco-run")
        rows.append(("offline, COCO labels", len(built), diversity(built, SAMPLE, 0)))
    return [
        {
            "set": name,
            "dialogues": str(count),
            "distinct-1": f"{d['distinct_1']:.3f}",
            "distinct-2": f"{d['distinct_2']:.3f}",
            "vocabulary": f"{d['vocabulary']:.0f}",
            "distinct-2 / released": f"{d['distinct_2'] / base['distinct_2']:.2f}",
            f"distinct-2 / target {TARGET}": f"{d['distinct_2'] / TARGET:.2f}",
            "target met": "yes" if d["distinct_2"] >= TARGET else "no",
        }
        for name, count, d in rows
    ]
