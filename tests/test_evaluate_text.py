"""Response metrics of ``prist evaluate`` against independent computations, and the ceiling on the
authors' test split (texts against themselves, then against shuffled texts)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import fixtures_dir

from prist_builder.annotation.masks import encode
from prist_builder.evaluate import text
from prist_builder.evaluate.predictions import Problems, match
from prist_builder.evaluate.references import Reference
from prist_builder.evaluate.scoring import ScoringOptions, score
from prist_builder.records.prediction import Prediction

HYPS = ["the cat sat on the mat today", "a quick brown fox jumps over the dog"]
REFS = ["the cat sat on a mat today", "the quick brown fox jumped over the lazy dog"]


def _lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@pytest.fixture(scope="module")
def wordnet(tmp_path_factory: pytest.TempPathFactory) -> object:
    """WordNet from Debian's wordnet-base package, laid out for nltk in a temporary folder."""
    if not (text.DEBIAN_WORDNET / "data.noun").exists():
        pytest.skip("WordNet is absent: apt-get install wordnet-base (see README, Evaluation)")
    folder = text.nltk_data_from_debian(tmp_path_factory.mktemp("nltk_data"))
    reader = text.find_wordnet(str(folder))
    assert reader is not None
    return reader


def test_bleu4_equals_nltk_corpus_bleu() -> None:
    from nltk.translate.bleu_score import corpus_bleu

    # lowercase words without punctuation: sacrebleu's 13a tokens are nltk's whitespace tokens,
    # and every n-gram order has a match, so neither library smooths
    expected = 100 * corpus_bleu([[r.split()] for r in REFS], [h.split() for h in HYPS])
    assert text.bleu4(HYPS, REFS) == pytest.approx(expected, rel=1e-6)
    assert text.bleu4(REFS, REFS) == pytest.approx(100.0)


def test_rouge_l_equals_hand_lcs_f_measure() -> None:
    for hyp, ref, got in zip(HYPS, REFS, text.rouge_l_scores(HYPS, REFS), strict=True):
        lcs = _lcs(hyp.split(), ref.split())
        p, r = lcs / len(hyp.split()), lcs / len(ref.split())
        assert got == pytest.approx(2 * p * r / (p + r))


def test_dist_n_counts_distinct_ngrams() -> None:
    texts = ["a b a b", "a c"]  # unigrams a b a b a c: 3 distinct of 6; bigrams ab ba ab ac: 3 of 4
    assert text.distinct(texts, 1) == pytest.approx(100 * 3 / 6)
    assert text.distinct(texts, 2) == pytest.approx(100 * 3 / 4)
    assert text.distinct([""], 1) == 0.0


def test_meteor_with_wordnet_matches_nltk_and_uses_synonyms(wordnet: object) -> None:
    from nltk.translate.meteor_score import meteor_score

    scores = text.score_texts(["the fast car"], ["the quick car"], wordnet)
    assert "METEOR" in scores.overall and text.METEOR_EXACT_STEM not in scores.overall
    expected = meteor_score([["the", "quick", "car"]], ["the", "fast", "car"], wordnet=wordnet)
    assert scores.meteor == [pytest.approx(expected)]
    fallback = text.score_texts(["the fast car"], ["the quick car"], None)
    assert fallback.meteor[0] < scores.meteor[0]  # fast/quick match only through WordNet synonyms


def test_meteor_without_wordnet_is_reported_under_its_own_name() -> None:
    scores = text.score_texts(HYPS, REFS, None)
    assert text.METEOR_EXACT_STEM in scores.overall and "METEOR" not in scores.overall
    assert scores.meteor_name == text.METEOR_EXACT_STEM
    # exact + Porter stem only: "jumps"/"jumped" match by stem
    assert (
        text.meteor_scores(["he jumps"], ["he jumped"], None)[0]
        > text.meteor_scores(["he leaps"], ["he jumped"], None)[0]
    )


def test_empty_hypotheses_score_zero_not_crash() -> None:
    scores = text.score_texts(["", "x"], ["a reference", ""], None)
    assert scores.rouge_l[0] == 0.0 and scores.meteor == [0.0, 0.0]


def _official_references() -> list[Reference]:
    data = json.loads((fixtures_dir("prist_official") / "test.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    refs = []
    for index, item in enumerate(data):  # the split has no masks: give each sample its own random box
        y, x = rng.integers(0, 48, size=2)
        mask = np.zeros((64, 64), bool)
        mask[y : y + 16, x : x + 16] = True
        turns = tuple(("user" if t["from"] == "human" else "assistant", t["value"]) for t in item["dialogue"])
        refs.append(Reference(f"s{index}", item["img_id"], 64, 64, turns, item["focus"], encode(mask)))
    return refs


def _score(refs: list[Reference], preds: dict[str, Prediction]):
    problems = Problems()
    return score(match(refs, preds, "pixel", problems), problems, ScoringOptions(), "run")


def test_official_split_against_itself_gives_the_ceiling() -> None:
    refs = _official_references()
    results = _score(
        refs, {r.sample_id: Prediction(sample_id=r.sample_id, responses=r.responses, mask=r.mask) for r in refs}
    )
    assert results.samples == 508
    for key in ("gIoU", "cIoU", "precision", "recall", "F1"):
        assert results.segmentation[key] == pytest.approx(100.0)
    assert results.response["BLEU-4"] == pytest.approx(100.0)
    assert results.response["ROUGE-L"] == pytest.approx(100.0)
    meteor = results.response.get("METEOR", results.response.get(text.METEOR_EXACT_STEM))
    assert meteor > 99.5  # METEOR's fragmentation penalty keeps an exact match just below 100
    assert results.response["Dist-1"] == pytest.approx(results.reference_dist["Dist-1"])
    assert results.response["Dist-2"] == pytest.approx(results.reference_dist["Dist-2"])
    assert sum(results.problems["counts"].values()) == 0


def test_official_split_against_shuffled_answers_scores_low() -> None:
    refs = _official_references()
    order = list(range(len(refs)))
    random.Random(1).shuffle(order)
    # same number of messages per dialogue, so only the content is wrong
    by_len: dict[int, list[Reference]] = {}
    for i in order:
        by_len.setdefault(len(refs[i].responses), []).append(refs[i])
    preds = {}
    for ref in refs:
        other = by_len[len(ref.responses)].pop()
        preds[ref.sample_id] = Prediction(sample_id=ref.sample_id, responses=other.responses, mask=other.mask)
    results = _score(refs, preds)
    assert results.segmentation["gIoU"] < 20 and results.segmentation["cIoU"] < 20
    assert results.response["BLEU-4"] < 10
    assert results.response["ROUGE-L"] < 30
    assert results.response.get("METEOR", results.response.get(text.METEOR_EXACT_STEM)) < 30


def test_bertscore_only_from_a_local_model(tmp_path: Path) -> None:
    import importlib.util

    with pytest.raises(FileNotFoundError, match="never downloaded"):
        text.bert_scores(["a cat"], ["a cat"], tmp_path / "absent")
    assert "BERTScore" not in text.score_texts(HYPS, REFS, None).overall  # not asked: not computed
    if importlib.util.find_spec("bert_score") is None:
        with pytest.raises(ImportError, match="pip install bert-score"):
            text.bert_scores(["a cat"], ["a cat"], tmp_path)
