"""``prist predict`` in bf16/fp16/fp32, batched, with its peak memory (issue 21, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from conftest import read_jsonl, run_cli  # noqa: E402

from prist_builder.annotation.masks import decode  # noqa: E402
from prist_builder.model.config import CONFIG_DIR, Source, load_config  # noqa: E402
from prist_builder.model.predict import Predictor, default_dtype  # noqa: E402
from prist_builder.model.records import read_source  # noqa: E402
from prist_builder.model.train import train  # noqa: E402
from prist_builder.records.prediction import Prediction  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder of the demo, a tiny model trained 4 steps on it)."""
    from accelerate.state import AcceleratorState

    root = tmp_path_factory.mktemp("predict")
    assert run_cli("demo", "--out", root / "demo").exit_code == 0
    config = load_config(CONFIG_DIR / "tiny.yaml")
    config.data.sources = [Source(name="prist", path=str(root / "demo" / "run"))]
    config.train.max_steps = 4
    AcceleratorState._reset_state(reset_partial_state=True)
    train(config, root / "model")
    AcceleratorState._reset_state(reset_partial_state=True)
    return root / "demo" / "run", root / "model"


def test_batched_predictions_equal_one_at_a_time(trained) -> None:
    run, model = trained
    records = [read_source(run)[i] for i in range(4)]
    records[1].turns = records[1].turns[:2]  # dialogues of different lengths share a batch
    single = Predictor.from_folder(model, device="cpu", dtype="fp32", batch_size=1)
    assert single.dtype == torch.float32 and default_dtype("cpu") == "fp32" and default_dtype("cuda") == "bf16"
    one = [single.predict(r) for r in records]
    batched = Predictor.from_folder(model, device="cpu", batch_size=4).predict_many(records)
    assert len(one[1].responses) == 1 and [len(p.responses) for p in one] == [len(p.responses) for p in batched]
    for a, b in zip(one, batched, strict=True):
        assert a.sample_id == b.sample_id and a.responses == b.responses
        assert a.mask is not None and b.mask is not None and a.mask.size == b.mask.size
        x, y = decode(a.mask), decode(b.mask)
        assert (x != y).mean() < 0.01  # left padding changes the float sums a little, not the masks


def test_predict_cli_runs_in_bf16_batched_and_reports_peak_memory(trained, tmp_path: Path) -> None:
    run, model = trained
    out = tmp_path / "pred.jsonl"
    result = run_cli(
        "predict", "--model", model, "--data", run, "--out", out, "--limit", "3", "--dtype", "bf16", "--batch-size", "2"
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "dtype bf16, batch 2: peak memory" in text and "GiB (process RSS)" in text
    lines = [Prediction.model_validate(row) for row in read_jsonl(out)]
    assert len(lines) == 3 and all(p.mask is not None for p in lines)
    predictor = Predictor.from_folder(model, device="cpu", dtype="bf16")
    assert {p.dtype for p in predictor.model.parameters()} == {torch.bfloat16}
    bad = run_cli("predict", "--model", model, "--data", run, "--out", out, "--dtype", "int8")
    assert bad.exit_code == 2 and "--dtype int8" in bad.output
