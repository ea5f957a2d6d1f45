"""MIRAS unit tests on tiny random configs (CPU): losses, [SEG]/[OBJ] spans, gradients, head, mixing, config."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from PIL import Image  # noqa: E402

from prist_builder.model.build import build_parts  # noqa: E402
from prist_builder.model.collator import MirasCollator, find_spans  # noqa: E402
from prist_builder.model.config import CONFIG_DIR, ConfigError, load_config  # noqa: E402
from prist_builder.model.losses import IGNORE_INDEX, mask_bce, mask_dice, miras_loss, text_ce  # noqa: E402
from prist_builder.model.miras import Miras  # noqa: E402
from prist_builder.model.mixing import MixedStream, schedule  # noqa: E402
from prist_builder.model.records import Record, Target  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TEXTS = ["What is in the photo?", "A red square and a blue bar.", "Show me the bar.", "Here: [OBJ]blue bar[SEG]."]


def _image() -> tuple[Image.Image, np.ndarray, np.ndarray]:
    array = np.zeros((60, 90, 3), dtype=np.uint8)
    array[10:30, 10:40] = (255, 0, 0)
    array[40:55, 20:80] = (0, 0, 255)
    square = np.zeros((60, 90), dtype=bool)
    square[10:30, 10:40] = True
    bar = np.zeros((60, 90), dtype=bool)
    bar[40:55, 20:80] = True
    return Image.fromarray(array), square, bar


def _record(two_targets: bool = False) -> Record:
    image, square, bar = _image()
    final = "Here: [OBJ]blue bar[SEG] and [OBJ]red square[SEG]." if two_targets else "Here: [OBJ]blue bar[SEG]."
    turns = [("user", TEXTS[0]), ("assistant", TEXTS[1]), ("user", TEXTS[2]), ("assistant", final)]
    targets = [Target("blue bar", bar)] + ([Target("red square", square)] if two_targets else [])
    return Record("s1" if not two_targets else "s2", image, turns, targets)


def _model(**changes) -> tuple[Miras, object]:
    config = load_config(CONFIG_DIR / "tiny.yaml")
    for key, value in changes.items():
        setattr(config.model, key, value)
    torch.manual_seed(0)
    parts = build_parts(config.model, TEXTS * 5)
    return Miras(parts, config.model), config


@pytest.fixture(scope="module")
def tiny() -> tuple[Miras, object]:
    return _model()


def _collator(model: Miras, config, side: str = "right") -> MirasCollator:
    return MirasCollator(model.processor, model.head.side, config.model.high_res, config.model.max_length, side)


# ---- losses (eq. 8) ---------------------------------------------------------------------------
def test_loss_components_match_hand_computed_values() -> None:
    logits = torch.tensor([[[2.0, -1.0], [0.5, -3.0]]])
    target = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    x, t = logits.numpy().ravel(), target.numpy().ravel()
    bce = np.mean(np.log1p(np.exp(-x)) * t + np.log1p(np.exp(x)) * (1 - t))
    p = 1 / (1 + np.exp(-x))
    dice = 1 - (2 * (p * t).sum() / 1000 + 1e-6) / ((p.sum() + t.sum()) / 1000 + 1e-6)
    assert mask_bce(logits, target).item() == pytest.approx(bce, rel=1e-5)
    assert mask_dice(logits, target).item() == pytest.approx(dice, rel=1e-5)

    token_logits = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([1, 2, IGNORE_INDEX])
    by_hand = np.mean(
        [
            math.log(sum(math.exp(v) for v in row)) - row[y]
            for row, y in zip(token_logits.tolist()[:2], [1, 2], strict=True)
        ]
    )
    ce = text_ce(token_logits, labels)
    assert ce.item() == pytest.approx(by_hand, rel=1e-5)

    other = torch.tensor([[[-1.0, 1.0], [1.0, -1.0]]])
    empty = torch.zeros((0, 2, 2))
    parts = miras_loss(ce, [logits, empty, other], [target, empty, target])
    bce2 = mask_bce(other, target).item()
    dice2 = mask_dice(other, target).item()
    assert parts.masks == 2
    assert parts.bce.item() == pytest.approx((bce + bce2) / 2, rel=1e-5)
    assert parts.dice.item() == pytest.approx((dice + dice2) / 2, rel=1e-5)
    assert parts.total.item() == pytest.approx(
        1.0 * by_hand + 2.0 * (bce + bce2) / 2 + 0.5 * (dice + dice2) / 2, rel=1e-5
    )


def test_loss_without_masks_is_text_only() -> None:
    ce = torch.tensor(1.5)
    parts = miras_loss(ce, [torch.zeros((0, 3, 3))], [torch.zeros((0, 3, 3))])
    assert parts.total.item() == pytest.approx(1.5) and parts.masks == 0
    with pytest.raises(ValueError, match="prediction"):
        miras_loss(ce, [torch.zeros((1, 3, 3))], [torch.zeros((1, 4, 3))])


# ---- [SEG]/[OBJ] positions --------------------------------------------------------------------
@pytest.mark.parametrize("side", ["left", "right"])
def test_seg_obj_positions_with_padding_and_multi_turn(tiny, side: str) -> None:
    model, config = tiny
    collator = _collator(model, config, side)
    short = Record(
        "short", _image()[0], [("user", "Segment it."), ("assistant", "[OBJ]blue bar[SEG]")], [_record().targets[0]]
    )
    batch = collator([_record(), short, _record(two_targets=True)])
    ids = batch["input_ids"]
    spans = find_spans(ids, model.obj_id, model.seg_id)
    assert [len(s) for s in spans] == [1, 1, 2]
    tokenizer = model.processor.tokenizer
    for row, row_spans in enumerate(spans):
        valid = batch["attention_mask"][row].nonzero().flatten()
        for start, end in row_spans:
            assert ids[row, start] == model.obj_id and ids[row, end] == model.seg_id
            assert valid.min() <= start < end <= valid.max()
            assert batch["labels"][row, end] == model.seg_id  # the answer is supervised
    assert tokenizer.decode(ids[2, spans[2][1][0] + 1 : spans[2][1][1]]).strip() == "red square"
    pad = tokenizer.pad_token_id
    if side == "left":
        assert ids[1, 0] == pad and ids[1, -1] != pad
    else:
        assert ids[1, -1] == pad and ids[1, 0] != pad
    # user turns, system prompt and image tokens are masked; the answers are not
    image_id = model.base.config.image_token_id
    assert (batch["labels"][ids == image_id] == IGNORE_INDEX).all()
    assert [len(m) for m in batch["target_masks"]] == [1, 1, 2]


# ---- forward, backward, gradients ------------------------------------------------------------
TRAINED = (
    "lora_",
    "multi_modal_projector",
    "fusion.",
    "seg_proj.",
    "alignment.",
    "mask_decoder",
    "embed_tokens",
    "lm_head",
)
"""Name parts of the parameter groups that train (everything else is frozen)."""


def _categories(name: str) -> str:
    return next((key for key in TRAINED if key in name), "frozen")


def test_forward_backward_grads_only_on_intended_parameters() -> None:
    model, config = _model()
    batch = _collator(model, config)([_record(), _record(two_targets=True)])
    out = model(batch)
    assert torch.isfinite(out.loss.total) and out.loss.masks == 3
    assert [tuple(m.shape) for m in out.mask_logits] == [(1, 60, 90), (2, 60, 90)]
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("alignment.")}
    out.loss.total.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert with_grad <= trainable
    assert {_categories(n) for n in trainable} == set(TRAINED)
    for frozen in ("vision_tower", "convnext", "vision_encoder", "language_model.layers.0.self_attn.q_proj.base_layer"):
        assert not any(frozen in n for n in trainable), frozen
    assert {_categories(n) for n in with_grad} >= {
        "lora_",
        "multi_modal_projector",
        "seg_proj.",
        "alignment.",
        "mask_decoder",
    }
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    optimizer.step()
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert changed, "the alignment module did not train"


def test_head_decodes_two_targets(tiny) -> None:
    model, _ = tiny
    side = model.head.side
    emb = model.head.image_embeddings(torch.zeros(1, 3, side, side))
    prompts = torch.randn(2, model.head.prompt_dim)
    masks = model.head(emb[0], prompts, (side, side * 2 // 3), (30, 45))
    assert masks.shape == (2, 30, 45) and masks.dtype == torch.float32


@pytest.mark.parametrize("dual, align", [(False, True), (True, False), (False, False)])
def test_ablation_switches(dual: bool, align: bool) -> None:
    model, config = _model(dual_encoder=dual, region_alignment=align)
    assert (model.fusion is not None) == dual and (model.alignment is not None) == align
    collator = MirasCollator(model.processor, model.head.side, config.model.high_res if dual else 0, 1024)
    out = model(collator([_record(two_targets=True)]))
    assert torch.isfinite(out.loss.total) and out.mask_logits[0].shape == (2, 60, 90)


# ---- mixing ----------------------------------------------------------------------------------
def test_mixing_follows_the_paper_ratios_exactly_and_deterministically() -> None:
    picks = schedule([9, 6, 2, 2], 19 * 10)
    assert [picks.count(i) for i in range(4)] == [90, 60, 20, 20]
    sources = [[f"a{i}" for i in range(5)], [f"b{i}" for i in range(3)]]
    stream = MixedStream(sources, [4, 1], seed=1)
    first = [stream[k] for k in range(50)]
    assert sum(x.startswith("a") for x in first) == 40
    a_picks = [x for x in first if x.startswith("a")]
    for epoch in range(8):  # each pass over a source is a permutation of it
        assert sorted(a_picks[epoch * 5 : epoch * 5 + 5]) == sources[0]
    assert a_picks[:5] != a_picks[5:10]  # reshuffled per pass
    again = MixedStream(sources, [4, 1], seed=1)
    assert [again[k] for k in range(50)] == first
    assert list(_take(again.iterate(start=3, stride=2), 5)) == first[3:13:2]
    assert [MixedStream(sources, [4, 1], seed=2)[k] for k in range(50)] != first
    with pytest.raises(ValueError, match="positive"):
        schedule([1, 0], 3)


def _take(iterator, n: int) -> list:
    return [next(iterator) for _ in range(n)]


# ---- config and CLI guard --------------------------------------------------------------------
def test_shipped_configs_load_with_the_paper_settings(tmp_path: Path) -> None:
    stage1, stage2 = load_config("stage1"), load_config(CONFIG_DIR / "stage2.yaml")
    assert (stage1.train.lr, stage1.train.batch_size, stage1.train.max_steps) == (3e-4, 16, 50_000)
    assert (stage2.train.lr, stage2.train.batch_size, stage2.train.max_steps) == (1e-5, 32, 20_000)
    assert [s.ratio for s in stage1.data.sources] == [9, 6, 2, 2]
    assert [s.ratio for s in stage2.data.sources] == [4, 1]
    assert stage2.model.lora.r == 8 and stage2.train.warmup_steps == 100
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = 'fast'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.toml: field train.lr"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text("[train]\nlr = 0.001\n", encoding="utf-8")
    assert load_config(good).train.lr == 0.001


def test_train_without_the_model_extra_says_what_to_install(monkeypatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from prist_builder.cli import app

    monkeypatch.setitem(sys.modules, "peft", None)
    result = CliRunner().invoke(app, ["train", "--config", "tiny", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "pip install 'prist[model]'" in result.output


def test_predictor_answers_each_user_message_and_returns_a_mask(tiny) -> None:
    from prist_builder.model.predict import Predictor

    model, config = tiny
    model.eval()
    image = _image()[0]
    responses, mask = Predictor(model, config.model.high_res, max_new_tokens=4).respond(image, ["Hi?", "Segment it."])
    assert len(responses) == 2 and all(isinstance(r, str) for r in responses)
    assert mask is not None and mask.shape == (60, 90) and mask.dtype == bool
    unforced = Predictor(model, config.model.high_res, max_new_tokens=1, force_seg=False)
    texts, none = unforced.respond(image, ["Hi?"])
    assert len(texts) == 1 and (none is None) == ("[SEG]" not in texts[0])
    model.train()


def _listing(items: list) -> dict:
    return {"ids": items}


def test_micro_batches_keep_their_order_with_loader_workers() -> None:
    from torch.utils.data import DataLoader

    from prist_builder.model.train import MicroBatches

    stream = MixedStream([list(range(100))], [1], seed=0)

    def batches(workers: int) -> list[list[int]]:
        data = MicroBatches(stream, _listing, first=3, count=6, micro=2, world=2, rank=1)
        return [b["ids"] for b in DataLoader(data, batch_size=None, num_workers=workers)]

    plain = batches(0)
    assert plain == batches(2)
    assert plain[0] == [stream[(3 * 2 + 1) * 2], stream[(3 * 2 + 1) * 2 + 1]] and len(plain) == 6
