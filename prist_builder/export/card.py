"""The dataset card ``README.md`` of an export: YAML metadata plus a human-readable description.

The YAML block (read by the Hub and by ``datasets.load_dataset``) names the license, task
categories, size category, the ``default`` config with one ``data/<split>-*`` pattern per
split, and ``dataset_info`` (the declared features and split sizes). The text carries the
run's statistics in the layout of the paper's Table 2, a few samples with their mask
overlaid, the turn and granularity distributions, how the run was built and checked, and
the paper's citation.
"""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetInfo, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCardData

from prist_builder.export.card_facts import CARD_SAMPLES, CardFacts
from prist_builder.export.features import FEATURES, IMAGE_FEATURES, prompt_versions
from prist_builder.export.images import ImageUnavailable, export_image
from prist_builder.export.pictures import bar_chart, overlay
from prist_builder.export.splits import SPLITS
from prist_builder.export.summary import ExportSummary
from prist_builder.exported import TARGET_KINDS
from prist_builder.samples import Sample, read_manifest
from prist_builder.stats import DatasetStats

__all__ = ["CARD_SAMPLES", "CITATION", "card_data", "size_category", "target_kind_counts", "write_card"]

SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))
"""Upper bounds of the Hub's size categories."""

CITATION = """@inproceedings{cai2025pixel,
  title     = {Pixel-Level Reasoning Segmentation via Multi-turn Conversations},
  author    = {Cai, Dexian and Yang, Xiaocui and Liu, Yongkang and Wang, Daling and Feng, Shi
               and Zhang, Yifei and Poria, Soujanya},
  booktitle = {Proceedings of the 63rd Annual Meeting of the Association for Computational Linguistics (ACL)},
  year      = {2025}
}"""


def size_category(samples: int) -> str:
    """The Hub's size category for a dataset of ``samples`` rows."""
    for bound, name in SIZE_CATEGORIES:
        if samples < bound:
            return name
    return "n>1M"


def card_data(
    sizes: dict[str, int],
    license: str,
    split_bytes: dict[str, int] | None = None,
    rows: str = "sample",
    row_counts: dict[str, int] | None = None,
) -> DatasetCardData:
    """YAML metadata of the card: license, tasks, size, configs and ``dataset_info``.

    ``sizes`` are samples per split; with ``rows="image"`` the declared features are
    :data:`~prist_builder.export.features.IMAGE_FEATURES` and ``row_counts`` (images per split)
    are the rows ``dataset_info`` lists.

    ``split_bytes`` (parquet bytes per split) go into ``dataset_info``: besides informing the
    Hub, they make two different exports' cards differ, and ``datasets`` keys its local cache of
    a folder on the card, so ``load_dataset(DIR)`` never serves another export's rows.
    """
    data = DatasetCardData(
        license=license,
        language=["en"],
        task_categories=["image-segmentation", "visual-question-answering"],
        size_categories=[size_category(sum(sizes.values()))],
        pretty_name="PRIST-style pixel-level reasoning segmentation",
        tags=["reasoning-segmentation", "multi-turn", "referring-segmentation"],
        # datasets cannot load a split without rows (huggingface/datasets PR #8401), so an
        # empty split keeps its (row-less) shard on disk but is not listed in the config.
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": f"data/{name}-*"} for name in SPLITS if sizes.get(name)],
            }
        ],
    )
    splits = SplitDict()
    nbytes = split_bytes or {}
    for name in SPLITS:
        if sizes.get(name):
            examples = (row_counts or sizes).get(name, 0)
            splits.add(SplitInfo(name=name, num_examples=examples, num_bytes=nbytes.get(name, 0)))
    features = IMAGE_FEATURES if rows == "image" else FEATURES
    info = DatasetInfo(features=features, splits=splits, download_size=sum(nbytes.values()) or None)
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return data


def _stats_table(stats: DatasetStats) -> str:
    rows = [
        ("Images", f"{stats.images:,}"),
        ("Samples (dialogues)", f"{stats.samples:,}"),
        ("Granularity coarse : medium : fine", f"{stats.coarse:.0f}% : {stats.medium:.0f}% : {stats.fine:.0f}%"),
        ("Utterances (reasoning turns)", f"{stats.utterances:,}"),
        ("Avg. / max. turns", f"{stats.avg_turns:.1f} / {stats.max_turns}"),
        ("Avg. / max. dialogue length (characters)", f"{stats.avg_length:.1f} / {stats.max_length}"),
    ]
    return "| statistic | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def _pictures(facts: CardFacts, assets: Path) -> list[str]:
    assets.mkdir(parents=True, exist_ok=True)
    lines = []
    turns = facts.merged("turns")
    bar_chart({str(k): turns[k] for k in sorted(turns)}, "samples per number of turns", assets / "turns.png")
    grains = facts.merged("grains")
    bar_chart(
        {g: grains.get(g, 0) for g in ("coarse", "medium", "fine")},
        "targets per granularity" if facts.multi() else "samples per granularity",
        assets / "granularity.png",
    )
    lines += ["![turns per sample](assets/turns.png) ![granularity](assets/granularity.png)", ""]
    shown = 0
    for sample in facts.pictures():
        if shown == CARD_SAMPLES:
            break
        try:
            image = export_image(sample.image)
        except ImageUnavailable:
            continue
        name = f"sample-{shown}.png"
        overlay(image["bytes"], sample.mask, assets / name)
        question = sample.dialogue.turns[0].content.replace("|", "/").replace("\n", " ")
        lines.append(f"![{sample.sample_id}](assets/{name})  \n`{sample.sample_id}`: first question: {question}")
        lines.append("")
        shown += 1
    return lines


def target_kind_counts(splits: dict[str, list[Sample]]) -> dict[str, dict[str, int]]:
    """Samples per target kind (``single``/``multi``/``empty``) and split, plus ``all``; also
    ``targets``: the number of target masks per split (one per ``[SEG]``)."""
    return CardFacts.of(splits).target_kind_counts()


def _kinds_section(facts: CardFacts) -> list[str]:
    counts = facts.target_kind_counts()
    header = ["| target kind | " + " | ".join(SPLITS) + " | all |", "|---|" + "---|" * (len(SPLITS) + 1)]
    names = {"single": "single (one target)", "multi": "multi (two or more)", "empty": "empty (no target)"}
    rows = [
        f"| {names.get(kind, kind)} | " + " | ".join(str(counts[kind][n]) for n in (*SPLITS, "all")) + " |"
        for kind in (*TARGET_KINDS, "targets")
    ]
    text = [
        "Samples per target kind: the final answer segments one target (`[OBJ]{focus}[SEG]`), two or more",
        "(one `[OBJ]{focus}[SEG]` each, a mask each, in answer order), or none (the asked-for thing is not in",
        "the image; no `[SEG]`, `targets` is empty). The last row counts target masks (`targets` entries).",
    ]
    return ["## Target kinds", "", *text, "", *header, *rows, ""]


def _build_section(run: Path, facts: CardFacts, summary: ExportSummary) -> list[str]:
    manifest = read_manifest(run)
    config = manifest.get("config", {})
    options = config.get("provider_options") or {}
    providers, rules, reviews = facts.merged("providers"), facts.merged("rules"), facts.merged("reviews")
    ious = facts.ious()
    lines = [
        "## How it was built",
        "",
        f"- Providers: {', '.join(f'{k} ({v})' for k, v in providers.items()) or 'none'}",
        f"- Model: {options.get('model') or manifest.get('provider', {}).get('model') or 'n/a (no language model)'}",
        f"- Prompt versions: {prompt_versions(manifest) or 'not recorded in the run manifest'}",
        f"- Build seed: {config.get('seed', 'n/a')}; turn bounds"
        f" {config.get('min_turns', '?')}..{config.get('max_turns', '?')}",
        f"- Final masks by rule: {', '.join(f'{k} {v}' for k, v in sorted(rules.items()))}",
        f"- Review status: {', '.join(f'{k} {v}' for k, v in sorted(reviews.items()))}",
    ]
    if ious:
        lines.append(f"- Mean IoU between two annotators: {sum(ious) / len(ious):.3f} over {len(ious)} samples")
    for reason, ids in summary.left_out.items():
        lines.append(f"- Left out ({reason}): {len(ids)} samples")
    return lines + [""]


def _layout_section(rows: str, facts: CardFacts, split_bytes: dict[str, int]) -> list[str]:
    images = {name: len(facts.splits[name].images) for name in SPLITS}
    total_mb = sum(split_bytes.values()) / 2**20
    if rows == "image":
        text = [
            "One row per image (`prist export --rows image`): the image is stored once, and its samples are",
            "nested in the `samples` list, each with `sample_id`, `turns`, `conversations`, `focus`, `targets`,",
            "`target_kind`, `tree` (with the sample's path) and `provenance`.",
            "`prist_builder.export.reader.load_export(DIR)` gives one row per sample, as the default layout does.",
        ]
    else:
        text = ["One row per sample (the default layout): each row carries its own copy of the image."]
    table = ["", "| split | images | samples | parquet MiB |", "|---|---|---|---|"]
    table += [
        f"| {name} | {images[name]} | {facts.splits[name].samples} | {split_bytes.get(name, 0) / 2**20:.1f} |"
        for name in SPLITS
    ]
    return ["## Layout", "", *text, *table, "", f"Parquet in all: {total_mb:.1f} MiB.", ""]


def write_card(
    folder: Path,
    run: Path,
    splits: dict[str, list[Sample]] | CardFacts,
    summary: ExportSummary,
    *,
    seed: int,
    license: str,
    rows: str = "sample",
) -> Path:
    """Write ``folder/README.md`` and its pictures under ``folder/assets``; returns the card's path.

    ``rows`` is the row layout of the shards (``sample`` or ``image``), stated on the card with
    the images, samples and parquet bytes of each split. ``splits``: each split's samples, or
    their :class:`~.card_facts.CardFacts` gathered while they were written (an export streams).
    """
    facts = splits if isinstance(splits, CardFacts) else CardFacts.of(splits)
    split_bytes = {name: sum(p.stat().st_size for p in (folder / "data").glob(f"{name}-*.parquet")) for name in SPLITS}
    row_counts = {name: len(facts.splits[name].images) for name in SPLITS} if rows == "image" else None
    data = card_data(summary.sizes, license, split_bytes, rows, row_counts)
    body = [
        "# PRIST-style pixel-level reasoning segmentation dataset",
        "",
        "Multi-turn dialogues that narrow down, turn by turn, to one object of a photo, each with the",
        "object's pixel mask (the task and dataset of Cai et al., ACL 2025). Exported by `prist export`.",
        "",
        "## Splits",
        "",
        "| split | samples |\n|---|---|",
        *[f"| {name} | {summary.sizes.get(name, 0)} |" for name in SPLITS],
        "",
        f"Split by image (no image in two splits) with seed {seed}. A split without samples keeps a row-less",
        "shard under `data/` but is left out of the config above, because `datasets` cannot load an empty split.",
        "",
        *_layout_section(rows, facts, split_bytes),
        *_kinds_section(facts),
        "## Statistics (layout of the paper's Table 2)",
        "",
        _stats_table(facts.stats()),
        "",
        *_pictures(facts, folder / "assets"),
        *_build_section(run, facts, summary),
        "## Fields",
        "",
        "`sample_id`, `image_id`, `image` (the source file, EXIF-corrected), `width`/`height` (pixels),",
        "`turns` (`role`/`content`), `conversations` (LLaVA `from`/`value`, `<image>` in the first human",
        "message), `focus`, `targets` (0..n in answer order: `focus`, COCO RLE `mask`, `box` [x, y, w, h],",
        "`area`, `granularity`, `element_id`), `target_kind` (`single`, `multi` or `empty`), `elements`,",
        "`tree` (nodes, edges, the sample's `path`), `source`, `provenance`.",
        "Decode a mask with `pycocotools.mask.decode({'size': m['size'], 'counts': m['counts'].encode()})`.",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    path = folder / "README.md"
    path.write_text(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body), encoding="utf-8")
    return path
