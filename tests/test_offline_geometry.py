"""No offline dialogue contradicts the mask it points to (issue 8 item 10, issue 15 "one geometry").

The checker here is independent of the provider's code: it decodes each mask, takes its
exact centroid and area with numpy, and checks every place, relation, superlative and
ordinal the dialogue states against them. It runs on the demo photos and every Labelme
fixture, built through the real pipeline at seed 0 (twice: byte-identical records) and
through the provider's step functions, exactly as the pipeline calls them, at seeds 1-30.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import fixtures_dir

from prist_builder.annotation.masks import decode
from prist_builder.demo import LABELME_DIR, photo_path
from prist_builder.pipeline.build import build
from prist_builder.pipeline.manifest import BuildConfig
from prist_builder.pipeline.steps import choose_targets
from prist_builder.providers.base import StepContext
from prist_builder.providers.offline.provider import OfflineProvider
from prist_builder.records import DialogueRecord, ElementsRecord

SEEDS = range(1, 31)
HOLDS_SHARE = 0.5
"""An element holds another when it covers at least this share of the other's pixels."""
LABELME_FIXTURES = ("labelme_voc", "labelme_tutorial")
COLUMNS, ROWS = ("left", "center", "right"), ("top", "middle", "bottom")
SUPERLATIVES = {"largest": max, "larger": max, "biggest": max, "smallest": min, "smaller": min}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def corpus(folder: Path) -> Path:
    """The demo's Labelme files and photos plus every Labelme fixture, in one folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(LABELME_DIR.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        shutil.copyfile(photo_path(doc["imagePath"]), folder / doc["imagePath"])
        shutil.copyfile(path, folder / path.name)
    for name in LABELME_FIXTURES:
        for path in sorted(fixtures_dir(name).iterdir()):
            shutil.copyfile(path, folder / path.name)
    return folder


class Truth:
    """Mask facts of one image, computed here from the RLEs (not with the provider's code)."""

    def __init__(self, record: ElementsRecord) -> None:
        self.width, self.height = record.image.width, record.image.height
        self.facts: dict[str, tuple[str, float, float, int]] = {}
        self.masks: dict[str, np.ndarray] = {}
        for element in record.elements:
            region = record.image.region(element.region_id) if element.region_id else None
            if region is None or region.ignore:
                continue
            self.masks[element.element_id] = decode(region.mask)
            ys, xs = np.nonzero(self.masks[element.element_id])
            self.facts[element.element_id] = (element.name, float(xs.mean()), float(ys.mean()), len(xs))
        self.names = sorted({f[0] for f in self.facts.values()}, key=len, reverse=True)

    def cell(self, element_id: str) -> tuple[str, str]:
        _, x, y, _ = self.facts[element_id]
        return COLUMNS[min(int(3 * x / self.width), 2)], ROWS[min(int(3 * y / self.height), 2)]

    def holders(self, element_id: str) -> list[str]:
        """The element and those whose mask holds most of it (its wholes: "it" may be the whole in a
        part's dialogue)."""
        mask = self.masks[element_id]
        return [element_id] + [
            i for i, m in self.masks.items() if i != element_id and (m & mask).sum() >= HOLDS_SHARE * mask.sum()
        ]

    def named(self, name: str) -> list[str]:
        return [i for i, f in self.facts.items() if f[0] == name]


def _subjects(text: str, start: int, truth: Truth, target: str) -> list[str]:
    """Elements a phrase at ``start`` is about: those named right before it, else the target (or a whole
    that holds it, which a part's dialogue talks about before it reaches the part)."""
    before = re.sub(r"\s+(in|on|at) the$", "", text[:start].rstrip(" ,").lower())
    for name in truth.names:
        if before.endswith(name.lower()):
            return truth.named(name)
    return truth.holders(target)


def _frame_claims(text: str, names: list[str]) -> list[tuple[int, str, str]]:
    """``(offset, axis, value)`` frame positions a text states; relations, ordinals and element
    names (``"flower center"``) removed first."""
    for name in names:
        text = re.sub(rf"\b{re.escape(name)}\b", lambda m: " " * len(m.group(0)), text, flags=re.IGNORECASE)
    relation = r"\b(to the )?(left|right) of(?! the (picture|image|photo|frame))\b"
    text = re.sub(relation, lambda m: " " * len(m.group(0)), text)
    text = re.sub(r"\b(from|further to) the (left|right)\b", lambda m: " " * len(m.group(0)), text)
    claims = []
    for match in re.finditer(r"\b(top|middle|bottom) (left|center|right)\b", text):
        claims += [(match.start(), "row", match.group(1)), (match.start(), "col", match.group(2))]
    text = re.sub(r"\b(top|middle|bottom) (left|center|right)\b", lambda m: " " * len(m.group(0)), text)
    for match in re.finditer(r"\b(left|right)\b", text):
        claims.append((match.start(), "col", match.group(1)))
    for match in re.finditer(r"\b(in|at) the (center|centre|middle)\b|\bcentral part\b", text):
        claims.append((match.start(), "col", "center"))
    for match in re.finditer(r"\b(top|upper|bottom|lower|mid-height|middle band)\b", text):
        rows = {"upper": "top", "lower": "bottom", "mid-height": "middle", "middle band": "middle"}
        row = rows.get(match.group(1), match.group(1))
        claims.append((match.start(), "row", row))
    return claims


def contradictions(dialogue: DialogueRecord, record: ElementsRecord) -> list[str]:
    """Every statement of ``dialogue`` that its masks contradict, as readable lines."""
    truth = Truth(record)
    target = dialogue.target_element_id
    found = []
    texts = [t.content for t in dialogue.turns[:-1]] + [dialogue.focus]
    for text in texts:
        for start, axis, value in _frame_claims(text, truth.names):
            subjects = _subjects(text, start, truth, target)
            if all(truth.cell(s)[0 if axis == "col" else 1] != value for s in subjects):
                cells = [truth.cell(s) for s in subjects]
                found.append(f"{dialogue.sample_id}: says {axis} {value!r} in {text!r}; masks say {cells}")
        names = "|".join(re.escape(n.lower()) for n in truth.names)  # longest first: "flower center" before "flower"
        pattern = (
            r"\b(to the left of|to the right of|left of|right of|above|below|bigger than|larger than|"
            rf"smaller than|nearest|next to|in front of) the ({names})\b"
        )
        for match in re.finditer(pattern, text.lower()):
            word, name = match.group(1), match.group(2)
            others = [i for i in truth.facts if truth.facts[i][0].lower() == name]
            if len(others) > 1:
                found.append(f"{dialogue.sample_id}: relation to {name!r}, which occurs {len(others)} times: {text!r}")
                continue
            (other,) = others
            _, ox, oy, oarea = truth.facts[other]
            subjects = _subjects(text.lower(), match.start(), truth, target)
            checks = {
                "left": lambda s, ox=ox, oy=oy, oarea=oarea: truth.facts[s][1] < ox,
                "right": lambda s, ox=ox, oy=oy, oarea=oarea: truth.facts[s][1] > ox,
                "above": lambda s, ox=ox, oy=oy, oarea=oarea: truth.facts[s][2] < oy,
                "below": lambda s, ox=ox, oy=oy, oarea=oarea: truth.facts[s][2] > oy,
                "bigger": lambda s, ox=ox, oy=oy, oarea=oarea: truth.facts[s][3] > oarea,
                "larger": lambda s, ox=ox, oy=oy, oarea=oarea: truth.facts[s][3] > oarea,
                "smaller": lambda s, ox=ox, oy=oy, oarea=oarea: truth.facts[s][3] < oarea,
            }
            key = next((k for k in checks if k in word), None)
            if word == "nearest":

                def distance(s: str, ox: float = ox, oy: float = oy) -> float:
                    return float(np.hypot(truth.facts[s][1] - ox, truth.facts[s][2] - oy))

                ok = [s for s in subjects if all(distance(s) <= distance(p) for p in truth.named(truth.facts[s][0]))]
                if not ok:
                    found.append(f"{dialogue.sample_id}: not the nearest to the {name}: {text!r}")
            elif key and not any(checks[key](s) for s in subjects):
                found.append(f"{dialogue.sample_id}: {word} the {name} is false: {text!r}")
        name = truth.facts[target][0]
        peers = truth.named(name)
        for match in re.finditer(rf"\b({'|'.join(SUPERLATIVES)}) {re.escape(name)}\b", text):
            extreme = SUPERLATIVES[match.group(1)](peers, key=lambda s: truth.facts[s][3])
            if extreme != target and match.group(0) in dialogue.focus:
                found.append(f"{dialogue.sample_id}: the target is not the {match.group(1)} {name}")
        for match in re.finditer(rf"\b({'|'.join(ORDINALS)}) {re.escape(name)} from the left\b", text):
            rank = sorted(peers, key=lambda s: truth.facts[s][1]).index(target)
            if ORDINALS[rank] != match.group(1) and match.group(0) in dialogue.focus:
                found.append(
                    f"{dialogue.sample_id}: the target is {ORDINALS[rank]} from the left, not {match.group(1)}"
                )
    return found


def _seed_dialogues(records: list[ElementsRecord], seed: int) -> list[tuple[DialogueRecord, ElementsRecord]]:
    """Steps 2 and 3 as the pipeline calls them (same contexts, same target draw), for one seed."""
    provider = OfflineProvider()

    async def run() -> list[tuple[DialogueRecord, ElementsRecord]]:
        out = []
        for record in records:
            ctx = StepContext.for_input(seed, "trees", record.image_id)
            tree = await provider.tree(record, choose_targets(record, ctx.rng), ctx)
            step3 = StepContext.for_input(seed, "dialogues", record.image_id)
            dialogues = await provider.dialogues(record, tree, step3)
            out += [(d, record) for d in dialogues]
        return out

    return asyncio.run(run())


def _records(run: Path, name: str, model: type) -> list:
    return [model.model_validate_json(line) for line in (run / name).read_text().splitlines() if line]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo + fixtures built at seed 0 through the pipeline."""
    root = tmp_path_factory.mktemp("geometry")
    folder = corpus(root / "inputs")
    asyncio.run(build(root / "run", BuildConfig(labelme=str(folder), seed=0), ("elements", "trees", "dialogues")))
    return root


def test_stored_positions_are_the_mask_centroid_cell(built: Path) -> None:
    for record in _records(built / "run", "elements.jsonl", ElementsRecord):
        truth = Truth(record)
        for element in record.elements:
            column, row = truth.cell(element.element_id)
            expected = "center" if (row, column) == ("middle", "center") else f"{row} {column}"
            assert element.attributes.position == expected, (record.image_id, element.element_id)


def test_no_dialogue_contradicts_its_mask_at_seed_0(built: Path) -> None:
    elements = {r.image_id: r for r in _records(built / "run", "elements.jsonl", ElementsRecord)}
    dialogues = _records(built / "run", "dialogues.jsonl", DialogueRecord)
    assert len(dialogues) >= 25 and len(elements) == 10
    problems = [p for d in dialogues for p in contradictions(d, elements[d.image_id])]
    assert problems == []


def test_no_dialogue_contradicts_its_mask_over_seeds(built: Path) -> None:
    records = _records(built / "run", "elements.jsonl", ElementsRecord)
    problems, checked = [], 0
    for seed in SEEDS:
        for dialogue, record in _seed_dialogues(records, seed):
            problems += contradictions(dialogue, record)
            checked += 1
    assert checked > 600
    assert problems == [], f"{len(problems)} contradictions, e.g. {problems[:5]}"


def test_rebuild_with_the_same_seed_is_byte_identical(built: Path, tmp_path: Path) -> None:
    asyncio.run(
        build(tmp_path / "run", BuildConfig(labelme=str(built / "inputs"), seed=0), ("elements", "trees", "dialogues"))
    )
    for name in ("elements.jsonl", "trees.jsonl", "dialogues.jsonl"):
        assert (tmp_path / "run" / name).read_bytes() == (built / "run" / name).read_bytes(), name


def test_the_checker_catches_a_contradiction(built: Path) -> None:
    """A dialogue whose position, relation or superlative is flipped is reported."""
    elements = {r.image_id: r for r in _records(built / "run", "elements.jsonl", ElementsRecord)}
    dialogue = _records(built / "run", "dialogues.jsonl", DialogueRecord)[0]
    record = elements[dialogue.image_id]
    column, row = Truth(record).cell(dialogue.target_element_id)
    wrong = next(c for c in ("left", "right") if c != column)
    turns = [t.model_copy() for t in dialogue.turns]
    turns[1] = turns[1].model_copy(update={"content": f"It sits on the {wrong} side of the picture."})
    flipped = dialogue.model_copy(update={"turns": turns})
    assert any(f"col {wrong!r}" in p for p in contradictions(flipped, record))


def test_dialogue_shape_follows_the_paper(built: Path) -> None:
    """3-5 turns; the stored reasoning question opens the dialogue; the focus names the frame only
    for an object whose name occurs more than once."""
    elements = {r.image_id: r for r in _records(built / "run", "elements.jsonl", ElementsRecord)}
    for dialogue in _records(built / "run", "dialogues.jsonl", DialogueRecord):
        assert 3 <= dialogue.num_turns <= 5
        assert dialogue.turns[0].content.endswith(dialogue.reasoning_question)
        record = elements[dialogue.image_id]
        target = record.element(dialogue.target_element_id)
        if sum(e.name == target.name for e in record.elements) == 1:
            assert not _frame_claims(dialogue.focus, []), dialogue.focus
