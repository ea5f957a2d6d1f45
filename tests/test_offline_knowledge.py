"""The offline knowledge table, its noun forms, and that every row is reachable from a label."""

from __future__ import annotations

import asyncio
import json
import random
import re

import numpy as np
import pytest
from conftest import fixtures_dir

from prist_builder.annotation.masks import encode
from prist_builder.demo import LABELME_DIR
from prist_builder.pipeline.steps import choose_targets
from prist_builder.providers.base import StepContext
from prist_builder.providers.offline.acts import ACTS
from prist_builder.providers.offline.grammar import GrammarError, count_forms, realise
from prist_builder.providers.offline.knowledge import indefinite_article, lookup, parse_table, table
from prist_builder.providers.offline.phrasing import stems, third_person
from prist_builder.providers.offline.provider import OfflineProvider
from prist_builder.records import Element, ElementAttributes, ElementsRecord, ImageRecord, SourceRegion
from prist_builder.stats_reference import POSITION_RULE, SELECTION_RULE

COCO_80 = (
    "person bicycle car motorcycle airplane bus train truck boat|traffic light|fire hydrant|stop sign|parking meter|"
    "bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie suitcase frisbee "
    "skis snowboard|sports ball|kite|baseball bat|baseball glove|skateboard surfboard|tennis racket|bottle|"
    "wine glass|cup fork knife spoon bowl banana apple sandwich orange broccoli carrot|hot dog|pizza donut cake "
    "chair couch|potted plant|bed|dining table|toilet tv laptop mouse remote keyboard|cell phone|microwave oven "
    "toaster sink refrigerator book clock vase scissors|teddy bear|hair drier|toothbrush"
)
VOC_20 = (
    "aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person pottedplant "
    "sheep sofa train tvmonitor"
)
ARTICLES = {
    "umbrella": "an umbrella",
    "orange": "an orange",
    "apple": "an apple",
    "elephant": "an elephant",
    "oven": "an oven",
    "airplane": "an airplane",
    "island": "an island",
    "ear": "an ear",
    "eye": "an eye",
    "hair drier": "a hair drier",
    "cup": "a cup",
    "sky": "sky",
    "coffee": "coffee",
    "broccoli": "broccoli",
    "grass": "grass",
    "water": "water",
    "hair": "hair",
    "scissors": "a pair of scissors",
    "skis": "a pair of skis",
    "index cards": "some index cards",
}
PLURALS = {
    "person": "people",
    "sheep": "sheep",
    "mouse": "mice",
    "leaf": "leaves",
    "shelf": "shelves",
    "bus": "buses",
    "knife": "knives",
    "bench": "benches",
    "sky": "sky",
    "scissors": "scissors",
}


def _coco_names() -> list[str]:
    return [
        n
        for chunk in COCO_80.split("|")
        for n in (
            [chunk]
            if " " in chunk.strip()
            and chunk
            in (
                "traffic light",
                "fire hydrant",
                "stop sign",
                "parking meter",
                "sports ball",
                "baseball bat",
                "baseball glove",
                "tennis racket",
                "wine glass",
                "hot dog",
                "potted plant",
                "dining table",
                "cell phone",
                "teddy bear",
                "hair drier",
            )
            else chunk.split()
        )
    ]


def test_the_table_covers_coco_voc_and_the_demo_labels() -> None:
    coco = _coco_names()
    assert len(coco) == 80
    labels = coco + VOC_20.split()
    for path in LABELME_DIR.glob("*.json"):
        labels += [s["label"] for s in json.loads(path.read_text())["shapes"] if s["label"] != "__ignore__"]
    for name in ("labelme_voc", "labelme_tutorial"):
        for path in fixtures_dir(name).glob("*.json"):
            labels += [s["label"] for s in json.loads(path.read_text())["shapes"] if s["label"] != "__ignore__"]
    unknown = sorted({label for label in labels if not lookup(label).known})
    assert unknown == []
    assert lookup("diningtable").name == "dining table" and lookup("tvmonitor").name == "tv"
    assert lookup("highland_6539_self_stick_notes").name == "sticky notes"
    assert lookup("Coffee_Cup").name == "cup"


def test_every_row_has_what_the_acts_need_and_no_frame_words() -> None:
    rows = table()
    assert len(rows) >= 120
    for name, row in rows.items():
        assert row.kind and len(row.uses) >= 2 and row.needs and row.places and row.made_of, name
        text = " ".join([*row.uses, *row.needs, *row.places, *row.made_of, *row.traits, *row.goes_with, *row.users])
        assert not POSITION_RULE.search(text), name
        assert not re.search(r"\b(I|my|me|myself)\b", third_person(" ".join(row.needs))), name


def test_article_and_plural_forms() -> None:
    for name, expected in ARTICLES.items():
        assert lookup(name).a(name) == expected, name
    for name, expected in PLURALS.items():
        assert lookup(name).plural_of(name) == expected, name
    assert indefinite_article("unicorn") == "a" and indefinite_article("hour") == "an"
    assert indefinite_article("one-way sign") == "a" and indefinite_article("umbrella stand") == "an"
    for name, row in table().items():
        mention = row.a(name)
        if row.form == "count":
            article = row.article or indefinite_article(name)
            assert mention == f"{article} {name}", name
        elif row.form == "mass":
            assert mention == name, name
        assert row.counted(name, 1, "one") == mention
        assert row.counted(name, 3, "three").startswith("three "), name


def test_a_label_outside_the_table_falls_back_and_says_so() -> None:
    category = lookup("zorblax widget")
    assert not category.known and category.uses == () and category.a("zorblax widget") == "a zorblax widget"
    record = _record(["zorblax widget", "gadget thing"])
    texts = _texts(record, seeds=range(6))
    joined = " ".join(texts[1::2]).lower()  # the answers
    assert "labelled as" in joined or "labelled here" in joined or "labelled regions" in joined
    assert "used for" not in joined  # never invents a purpose


def test_a_malformed_row_names_the_file_and_field() -> None:
    with pytest.raises(ValueError, match=r"bad.toml: \[cup\]\.uses"):
        parse_table('[cup]\nkind = "dish"\nuses = "not a list"\n', "bad.toml")
    with pytest.raises(ValueError, match=r"bad.toml: \[cup\]\.form"):
        parse_table('[cup]\nkind = "dish"\nform = "plenty"\n', "bad.toml")
    with pytest.raises(ValueError, match=r"bad.toml: \[cup\]: unknown field"):
        parse_table('[cup]\nkind = "dish"\ncolour = "red"\n', "bad.toml")
    with pytest.raises(ValueError, match=r"bad.toml: \[dog\]\.users: a person or an animal"):
        parse_table('[dog]\nkind = "pet"\nanimate = true\nusers = ["owners"]\n', "bad.toml")
    with pytest.raises(ValueError, match=r"bad.toml: \[cup\]\.users: 'a barista'"):
        parse_table('[cup]\nkind = "dish"\nusers = ["a barista"]\n', "bad.toml")


def test_table_phrases_fit_the_slots_they_fill() -> None:
    """Each list reads in its slot: ``uses`` after "good for", ``traits`` after a plural subject,
    ``goes_with`` as a noun phrase in a list, ``users`` as a plural group; the answers built from
    them are tidy sentences."""
    third_singular = re.compile(r"^(is|has|does|was|[a-z]+[^s]s)$")
    rng = random.Random(0)
    companion, user = ACTS["companion"][1], ACTS["user"][1]
    for name, row in table().items():
        assert len(row.goes_with) >= 4, name
        assert not (row.animate and row.users), name  # a person or an animal is nobody's tool
        for use in row.uses:
            assert use.split()[0] not in ("to", "for", "is"), (name, use)  # "good for {use}"
        for trait in row.traits:
            assert not third_singular.match(trait.split()[0]), (name, trait)  # "{plural} usually {trait}"
        for phrase in [*row.goes_with, *row.users, *row.uses, *row.traits]:
            assert phrase == phrase.strip() and "  " not in phrase and not phrase.endswith("."), (name, phrase)
            assert phrase[0].islower() or phrase.split()[0] in ("TV", "USB", "DVD", "SIM", "US"), (name, phrase)
        for phrase in row.users:
            assert phrase.split()[0] not in ("a", "an", "the", "every"), (name, phrase)
        slots = {"pair": row.goes_with[0], "pair2": row.goes_with[1], "pair3": row.goes_with[2]}
        slots |= {"pair4": row.goes_with[3], "Pair_cap": row.goes_with[0][:1].upper() + row.goes_with[0][1:]}
        for template in companion:
            text = realise([template], rng, slots)
            assert re.match(r"^[A-Z][^.]*\.$", text) and " a a " not in text, text
        if row.users:
            users = [*row.users, *row.users][:3]
            slots = {"user": users[0], "user2": users[1], "user3": users[2], "User_cap": users[0].capitalize()}
            for template in user:
                assert re.match(r"^[A-Z][^.]*\.$", realise([template], rng, slots)), (name, template)


def test_grammar_realises_many_forms_and_rejects_bad_templates() -> None:
    import random

    for act, (questions, answers) in ACTS.items():
        forms = sum(count_forms(t) for t in questions) + sum(count_forms(t) for t in answers)
        assert forms >= 4, act
    assert sum(count_forms(t) for t in ACTS["need"][0]) >= 50
    seen = {realise(ACTS["need"][0], random.Random(i), {"need": "dry off", "need3": "dry off"}) for i in range(60)}
    assert len(seen) >= 30
    with pytest.raises(GrammarError):
        realise(["(unclosed"], random.Random(0), {})
    assert realise(["(a|b) \\(literal\\) {x}."], random.Random(0), {"x": "y"}) in ("A (literal) y.", "B (literal) y.")


def _record(labels: list[str]) -> ElementsRecord:
    """A 120x90 image with one rectangle region per label (the first the largest), elements named by label."""
    height, width = 90, 120
    regions, elements = [], []
    for index, label in enumerate(labels):
        mask = np.zeros((height, width), bool)
        x0, y0 = 5 + 55 * (index % 2), 5 + 40 * (index // 2 % 2)
        mask[y0 : y0 + 30 - 4 * index, x0 : x0 + 40 - 4 * index] = True
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        regions.append(
            SourceRegion(
                region_id=f"r{index}",
                label=label,
                shape_types=["rectangle"],
                source=f"t#{index}",
                mask=encode(mask),
                area=int(mask.sum()),
                bbox=bbox,
            )
        )
        attributes = ElementAttributes(
            colour="red", position="top left", relative_size="small", area_fraction=float(mask.mean()), count=1
        )
        elements.append(
            Element(
                element_id=f"e{index}",
                name=label,
                description=f"A {label}.",
                attributes=attributes,
                region_id=f"r{index}",
            )
        )
    image = ImageRecord(
        image_id="synthetic",
        path="/tmp/synthetic.png",
        width=width,
        height=height,
        sha256="0" * 64,
        mime="image/png",
        source="labelme",
        regions=regions,
    )
    return ElementsRecord(image_id="synthetic", provider="offline", image=image, elements=elements)


def _texts(record: ElementsRecord, seeds: range, element_id: str | None = None) -> list[str]:
    provider = OfflineProvider()
    out = []
    for seed in seeds:
        ctx = StepContext.for_input(seed, "trees", record.image_id)
        targets = choose_targets(record, ctx.rng)
        tree = asyncio.run(provider.tree(record, targets, ctx))
        for dialogue in asyncio.run(provider.dialogues(record, tree, StepContext.for_input(seed, "dialogues", "x"))):
            if element_id is None or dialogue.target_element_id == element_id:
                out += [t.content for t in dialogue.turns]
    return out


def test_every_table_label_is_reachable() -> None:
    """Each row (and each alias) labelled in an image yields a dialogue about it that uses the row's knowledge."""
    unreached = []
    for name, row in table().items():
        assert all(lookup(alias).name == name for alias in row.aliases), name
        for label in (name, *row.aliases[:1]):
            record = _record([label, "zorblax"])
            texts = " ".join(_texts(record, range(4), "e0")).lower()
            knowledge = [*row.uses, *row.needs, *row.places, *row.made_of]
            if not texts or not any(k.lower() in texts for k in knowledge):
                unreached.append(label)
    assert unreached == []


def test_offline_questions_are_not_selection_questions() -> None:
    record = _record(["cup", "dining table", "chair", "bottle"])
    questions = [t for i, t in enumerate(_texts(record, range(10))) if i % 2 == 0]
    assert questions and not [q for q in questions if SELECTION_RULE.search(q)]


@pytest.mark.parametrize("labels", [["cat", "zorblax"], ["person", "dog"], ["zorblax", "gadget"]])
def test_the_longest_and_shortest_dialogues_the_provider_accepts(labels: list[str]) -> None:
    """--min-turns 6 and --max-turns 3 are met for people, animals and unknown labels alike."""
    record = _record(labels)
    provider = OfflineProvider()
    for turns in (6, 3):
        for seed in range(3):
            ctx = StepContext.for_input(seed, "trees", record.image_id, min_turns=turns, max_turns=turns)
            tree = asyncio.run(provider.tree(record, choose_targets(record, ctx.rng), ctx))
            step3 = StepContext.for_input(seed, "dialogues", record.image_id, min_turns=turns, max_turns=turns)
            dialogues = asyncio.run(provider.dialogues(record, tree, step3))
            assert dialogues and all(d.num_turns == turns for d in dialogues)


NEAR_DUPLICATE_STOPWORDS = frozenset(
    "a an the to of for in on at my me i and or with up down out some it is be get have do make take keep go put "
    "use one someone something them their your you off into from by as when after before while its are this "
    "that".split()
)
"""Words two phrases may share and still say different things."""


def test_coco_rows_hold_no_near_duplicate_phrases() -> None:
    """Each COCO category's lists are deep (a category meets ~6 of ~500 dialogues) and hold no
    near-duplicates ("holding coffee" / "holding a coffee"): two phrases of one list never share
    all their content words, nor two of three or more."""
    for label in _coco_names():
        row = lookup(label)
        assert len(row.uses) >= 16 and len(row.traits) >= 12 and len(row.goes_with) >= 11, label
        assert len(row.needs) >= 4 and len(row.places) >= 4, label
        for field in ("uses", "traits", "goes_with", "needs", "places"):
            phrases = getattr(row, field)
            for i, first in enumerate(phrases):
                for second in phrases[i + 1 :]:
                    a, b = stems(first, NEAR_DUPLICATE_STOPWORDS), stems(second, NEAR_DUPLICATE_STOPWORDS)
                    shared = len(a & b)
                    assert a != b and not (shared >= 2 and shared >= 0.67 * min(len(a), len(b))), (
                        label,
                        first,
                        second,
                    )
