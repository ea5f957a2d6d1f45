"""Response metrics of Table 3: BLEU-4, ROUGE-L, METEOR, Dist-1/2 and (optionally) BERTScore.

Each generated assistant message is scored against the reference message it replaces. All
figures are in percent (the paper's scale):

- ``BLEU-4``: corpus BLEU of all pairs (sacrebleu, its default ``13a`` tokenisation and
  exponential smoothing), Papineni et al. 2002.
- ``ROUGE-L``: mean over pairs of the ROUGE-L F-measure (rouge-score, no stemming).
- ``METEOR``: mean over pairs of nltk's METEOR (exact, Porter-stem and WordNet-synonym matches).
  It needs the WordNet data, which no Python package ships (see :func:`find_wordnet`). Without it
  the same formula with exact and stem matches only is reported as ``METEOR (exact+stem)``, a
  different metric, never under the name ``METEOR``.
- ``Dist-1``, ``Dist-2``: distinct unigrams / bigrams over all unigrams / bigrams of all generated
  messages (Li et al. 2015), lowercased word tokens.
- ``BERTScore``: mean F1 (bert-score), only from a model folder on disk.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PERCENT = 100.0
"""Scale of every reported figure."""
METEOR = "METEOR"
"""Name of METEOR with WordNet synonyms (the paper's)."""
METEOR_EXACT_STEM = "METEOR (exact+stem)"
"""Name of the fallback METEOR without WordNet synonyms."""
DIST_ORDERS = (1, 2)
"""n of the Dist-n columns."""
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    """Lowercased word and punctuation tokens of ``text`` (used by METEOR and Dist-n)."""
    return _TOKEN.findall(text.lower())


class _NoSynonyms:
    """A WordNet stand-in without synsets: METEOR then matches exact words and stems only."""

    def synsets(self, *args: object, **kwargs: object) -> list:
        return []


@cache
def find_wordnet(folder: str | None = None) -> object | None:
    """nltk's WordNet reader if the data is installed, else ``None``.

    Looks in ``folder`` (an nltk data folder holding ``corpora/wordnet``) when given, then in
    ``$NLTK_DATA`` and nltk's default locations, then uses Debian's ``wordnet-base`` package
    (``/usr/share/wordnet``), laid out once for nltk under :func:`debian_layout_dir`. Install it
    with ``python -m nltk.downloader wordnet`` (needs the network), or on Debian/Ubuntu with
    ``apt-get install wordnet-base``.
    """
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    paths = [folder] if folder else []
    paths += [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p] + list(nltk.data.path)
    if (DEBIAN_WORDNET / "data.noun").exists():
        paths.append(str(debian_layout_dir()))
    for base in paths:
        root = Path(base) / "corpora" / "wordnet"
        if base == str(debian_layout_dir()) and not (root / "lexnames").exists():
            nltk_data_from_debian(Path(base))
        if (root / "data.noun").exists() and (root / "lexnames").exists():
            if base not in nltk.data.path:  # nltk only reads corpora under its data path
                nltk.data.path.append(base)
            with warnings.catch_warnings():  # "multilingual functions are not available": not used here
                warnings.simplefilter("ignore")
                reader = WordNetCorpusReader(str(root), None)
            if reader.synsets("dog"):
                return reader
    return None


def debian_layout_dir() -> Path:
    """Where Debian's WordNet is laid out for nltk: ``$PRIST_NLTK_DATA`` or ``~/.cache/prist/nltk_data``."""
    root = os.environ.get("PRIST_NLTK_DATA")
    return Path(root) if root else Path.home() / ".cache" / "prist" / "nltk_data"


DEBIAN_WORDNET = Path("/usr/share/wordnet")
"""Where Debian's ``wordnet-base`` package puts WordNet 3.0."""
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
    "adj.ppl"
).split()
"""WordNet 3.0's lexicographer files in number order (the ``lexnames`` file nltk reads, which Debian omits)."""
_LEX_SYNTAX = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def nltk_data_from_debian(target: Path, source: Path = DEBIAN_WORDNET) -> Path:
    """Lay Debian's WordNet out as nltk data under ``target`` (``target/corpora/wordnet``); returns ``target``.

    Raises:
        FileNotFoundError: ``source`` has no WordNet database files.
    """
    files = sorted(
        p for p in source.glob("*") if p.is_file() and (p.name.startswith(("data.", "index.")) or p.suffix == ".exc")
    )
    if not (source / "data.noun").exists():
        raise FileNotFoundError(f"{source}: no WordNet data.noun; install Debian's wordnet-base package")
    root = Path(target) / "corpora" / "wordnet"
    root.mkdir(parents=True, exist_ok=True)
    for path in files:
        if not (root / path.name).exists():
            (root / path.name).write_bytes(path.read_bytes())
    lines = [f"{i:02d}\t{name}\t{_LEX_SYNTAX[name.split('.')[0]]}" for i, name in enumerate(LEXNAMES)]
    (root / "lexnames").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not (
        root / "index.sense"
    ).exists():  # Debian ships it apart (wordnet-sense-index); only multilingual use needs it
        (root / "index.sense").write_text("", encoding="utf-8")
    return Path(target)


def meteor_scores(hypotheses: Sequence[str], references: Sequence[str], wordnet: object | None) -> list[float]:
    """Per-pair METEOR in ``[0, 1]`` (nltk); with ``wordnet=None`` the exact+stem variant."""
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import meteor_score

    stemmer = PorterStemmer()
    backend = wordnet if wordnet is not None else _NoSynonyms()
    out = []
    for hyp, ref in zip(hypotheses, references, strict=True):
        h, r = tokens(hyp), tokens(ref)
        out.append(meteor_score([r], h, stemmer=stemmer, wordnet=backend) if h and r else 0.0)
    return out


def rouge_l_scores(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """Per-pair ROUGE-L F-measure in ``[0, 1]`` (rouge-score, no stemming)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references, strict=True)]


def bleu4(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 in percent (sacrebleu)."""
    import sacrebleu

    if not hypotheses:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def distinct(texts: Sequence[str], n: int) -> float:
    """Dist-n in percent: distinct n-grams over all n-grams of ``texts`` (0.0 when there are none)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        words = tokens(text)
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return PERCENT * len(seen) / total if total else 0.0


def bert_scores(hypotheses: Sequence[str], references: Sequence[str], model_path: Path) -> list[float]:
    """Per-pair BERTScore F1 in ``[0, 1]`` from a local model folder (last hidden layer).

    Raises:
        ImportError: bert-score is not installed.
        FileNotFoundError: ``model_path`` does not exist (nothing is downloaded).
    """
    if not Path(model_path).exists():
        raise FileNotFoundError(f"{model_path}: no such BERTScore model folder (it is never downloaded)")
    try:
        import bert_score
        from transformers import AutoConfig
    except ImportError as exc:
        raise ImportError(
            f"BERTScore needs the bert-score and transformers packages ({exc.name} is missing):"
            " pip install bert-score transformers"
        ) from None

    layers = AutoConfig.from_pretrained(str(model_path), local_files_only=True).num_hidden_layers
    _, _, f1 = bert_score.score(list(hypotheses), list(references), model_type=str(model_path), num_layers=layers)
    return [float(v) for v in f1]


@dataclass
class TextScores:
    """Response figures of aligned message pairs.

    Attributes:
        overall: Table 3 figures in percent keyed by metric name: ``BLEU-4``, ``ROUGE-L``,
            ``METEOR`` or ``METEOR (exact+stem)`` (see module doc), ``Dist-1``, ``Dist-2``, and
            ``BERTScore`` when a model was given.
        rouge_l, meteor: per-pair values in ``[0, 1]``.
        bertscore: per-pair BERTScore F1 in ``[0, 1]``, ``None`` without a model.
        meteor_name: the METEOR variant's name.
    """

    overall: dict[str, float]
    rouge_l: list[float]
    meteor: list[float]
    bertscore: list[float] | None
    meteor_name: str


def _mean_percent(values: Sequence[float]) -> float:
    return PERCENT * sum(values) / len(values) if values else 0.0


def score_texts(
    hypotheses: Sequence[str], references: Sequence[str], wordnet: object | None, bertscore_model: Path | None = None
) -> TextScores:
    """Score aligned ``hypotheses`` against ``references`` (one reference each)."""
    rouge = rouge_l_scores(hypotheses, references)
    meteor = meteor_scores(hypotheses, references, wordnet)
    meteor_name = METEOR if wordnet is not None else METEOR_EXACT_STEM
    overall: dict[str, float] = {
        "BLEU-4": bleu4(hypotheses, references),
        "ROUGE-L": _mean_percent(rouge),
        meteor_name: _mean_percent(meteor),
    }
    for order in DIST_ORDERS:
        overall[f"Dist-{order}"] = distinct(hypotheses, order)
    bert = None
    if bertscore_model is not None:
        bert = bert_scores(hypotheses, references, bertscore_model) if hypotheses else []
        overall["BERTScore"] = _mean_percent(bert)
    return TextScores(overall, rouge, meteor, bert, meteor_name)
