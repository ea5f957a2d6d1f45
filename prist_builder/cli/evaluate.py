"""``prist evaluate``: score a predictions file (Tables 3 and 4), or compare result files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from prist_builder.cli.console import console, fail
from prist_builder.cli.openai_options import OpenAIOpts, with_openai_options

# The scoring code (numpy, pycocotools) is imported inside the command, so that
# ``prist --help`` and the other commands start without it.

COMPARE_PLOT, COMPARE_TABLE = "compare.png", "compare"
"""File names ``--compare`` writes into ``--out``."""
WIDEST = 400
"""Most characters per line a table printed into a pipe or file takes."""

InputsArg = Annotated[list[Path], typer.Argument(help="Predictions JSONL; with --compare, results.json files.")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="References: a prist export folder or a run folder.")]
SplitOpt = Annotated[str, typer.Option("--split", help="Split of an export folder.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder \\[default: evaluation/<name>].")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Row label \\[default: the predictions file's stem].")]
BoxOpt = Annotated[
    str, typer.Option("--box-coords", help="Coordinates of <box> answers: pixel, unit (0-1) or thousand (0-1000).")
]
FinalTurnOpt = Annotated[bool, typer.Option("--include-final-turn", help="Also score the segmentation answer's text.")]
WordnetOpt = Annotated[
    Path | None, typer.Option("--wordnet", file_okay=False, help="nltk data folder holding corpora/wordnet.")
]
BertScoreOpt = Annotated[
    Path | None, typer.Option("--bertscore-model", help="Local model folder for BERTScore (never downloaded).")
]
JudgeOpt = Annotated[bool, typer.Option("--judge", help="Also run the LLM judge (Table 4; uses the OpenAI options).")]
RepeatsOpt = Annotated[int, typer.Option("--repeats", min=1, help="Judge repeats per dialogue (Appendix C.4.2).")]
JudgeLimitOpt = Annotated[int | None, typer.Option("--judge-limit", min=1, help="Judge only the first N samples.")]
CompareOpt = Annotated[bool, typer.Option("--compare", help="Compare results.json files: deltas and a PNG plot.")]


def show(table: Table) -> None:
    """Print a table; into a pipe or file at its natural width (no cropped columns)."""
    width = (
        None
        if console.is_terminal
        else max(console.width, console.measure(table, options=console.options.update_width(WIDEST)).maximum)
    )
    console.print(table, width=width, crop=width is None)


def print_tables(summary: dict[str, Any]) -> None:
    """Print Table 3, the granularity and target-kind breakdowns, Table 4 (if judged) and the problems."""
    from prist_builder.evaluate.tables import (
        granularity_rows,
        kind_rows,
        problem_rows,
        rich_table,
        table3_rows,
        table4_rows,
    )

    show(rich_table("Table 3: pixel-level RS (percent; Precision/Recall/F1 pixel-wise micro)", table3_rows([summary])))
    rows = granularity_rows(summary)
    if rows:
        show(rich_table("Segmentation by granularity (percent)", rows))
    rows = kind_rows(summary)
    if rows:
        show(rich_table("Segmentation by target kind (percent; GRES: N-acc, T-acc)", rows))
    judged = table4_rows([summary])
    if judged:
        show(rich_table("Table 4: reasoning quality (LLM judge, 0-5)", judged))
    problems = problem_rows(summary)
    if problems:
        show(rich_table("Problems (scored as described in README; see results.json)", problems))


def _compare(paths: list[Path], out: Path) -> None:
    from prist_builder.evaluate.compare import CompareError, delta_rows, load_summary, plot, unique_names
    from prist_builder.evaluate.tables import markdown, rich_table, table3_rows, table4_rows, write_csv

    if len(paths) < 2:
        raise fail("--compare needs at least two results.json files", 2)
    try:
        summaries = unique_names([load_summary(p) for p in paths], paths)
    except CompareError as exc:
        raise fail(str(exc)) from None
    show(rich_table("Table 3 layout", table3_rows(summaries)))
    if table4_rows(summaries):
        show(rich_table("Table 4 layout", table4_rows(summaries)))
    deltas = delta_rows(summaries)
    show(rich_table(f"Deltas against {summaries[0]['name']}", deltas))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{COMPARE_TABLE}.md").write_text(
        markdown(table3_rows(summaries)) + "\n" + markdown(deltas), encoding="utf-8"
    )
    write_csv(out / f"{COMPARE_TABLE}.csv", deltas, ("Metric",))
    console.print(f"plot: {plot(summaries, out / COMPARE_PLOT)}", highlight=False)


def register_evaluate(app: typer.Typer) -> None:
    """Add ``evaluate`` to the app."""

    @app.command("evaluate")
    @with_openai_options
    def evaluate(
        inputs: InputsArg,
        data: DataOpt = None,
        split: SplitOpt = "test",
        out: OutOpt = None,
        name: NameOpt = None,
        box_coords: BoxOpt = "pixel",
        include_final_turn: FinalTurnOpt = False,
        wordnet: WordnetOpt = None,
        bertscore_model: BertScoreOpt = None,
        judge: JudgeOpt = False,
        repeats: RepeatsOpt = 5,
        judge_limit: JudgeLimitOpt = None,
        compare: CompareOpt = False,
        **openai: Any,
    ) -> None:
        """Score a model's predictions against a PRIST split: Tables 3 and 4 of the paper."""
        if compare:
            _compare(inputs, out or Path("evaluation"))
            return
        if len(inputs) != 1:
            raise fail("give one predictions file (or --compare with results files)", 2)
        if data is None:
            raise fail("--data is required: a prist export folder or a run folder", 2)
        from prist_builder.evaluate.boxes import CONVENTION_SCALE  # numpy, Pillow: only when scoring

        if box_coords not in CONVENTION_SCALE:
            raise fail(f"--box-coords must be one of {', '.join(CONVENTION_SCALE)}, got {box_coords!r}", 2)
        from prist_builder.evaluate.references import ReferenceError
        from prist_builder.evaluate.scoring import ScoringOptions
        from prist_builder.evaluate.scoring import evaluate as run_scoring

        options = ScoringOptions(
            split=split,
            box_convention=box_coords,  # type: ignore[arg-type]
            include_final_turn=include_final_turn,
            wordnet_dir=wordnet,
            bertscore_model=bertscore_model,
        )
        try:
            results, matched = run_scoring(inputs[0], data, options, name)
        except (FileNotFoundError, ReferenceError, ImportError) as exc:
            raise fail(str(exc)) from None
        target = out or Path("evaluation") / results.name
        opts = OpenAIOpts.from_kwargs(openai)
        if judge or opts.dry_run:
            if not _judge(results, matched, opts, repeats, judge_limit, include_final_turn, target):
                return  # a dry run: the estimate is printed, nothing scored or written
        from prist_builder.evaluate.tables import write_outputs

        summary = results.summary()
        written = write_outputs(target, summary, results.per_sample)
        print_tables(summary)
        console.print(f"wrote {len(written)} files to {target} ({', '.join(p.name for p in written)})", highlight=False)
        if (results.problems["counts"].get("missing") or 0) == results.samples and results.samples:
            raise fail("no prediction matched a reference sample id (all scored as empty); check --data and --split")


def _judge(
    results: Any, matched: list[Any], opts: OpenAIOpts, repeats: int, limit: int | None, include_final: bool, out: Path
) -> bool:
    """Run the LLM judge into ``results``; ``False`` after a dry run (estimate printed only).

    Raises:
        typer.Exit: bad options (2), or the judge cannot go on (bad key, unknown model: 1).
    """
    import asyncio

    from pydantic import ValidationError

    from prist_builder.errors import FatalError
    from prist_builder.evaluate import judge
    from prist_builder.evaluate.predictions import Problems
    from prist_builder.evaluate.segmentation import KINDS
    from prist_builder.llm.client import LLMClient
    from prist_builder.llm.settings import LLMSettings

    values = {k: v for k, v in opts.values.items() if k in LLMSettings.model_fields}
    try:
        settings = LLMSettings.model_validate({**values, **({"api_key": opts.api_key} if opts.api_key else {})})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"--{'.'.join(map(str, first['loc'])).replace('_', '-')}: {first['msg']}", 2) from None
    chosen = matched[:limit] if limit else matched
    if opts.dry_run:
        plan = judge.estimate(chosen, repeats, include_final, settings)
        money = "unknown model" if plan.usd is None else f"${plan.usd:.4f} online, ${plan.usd_batch:.4f} batch"
        console.print(
            f"dry run: {plan.requests:,} judge requests ({len(chosen)} samples x 2 sides x {repeats} repeats),"
            f" about {plan.prompt_tokens:,} prompt + at most {plan.completion_tokens:,} completion tokens,"
            f" {money}, model {settings.model}; nothing sent (cached answers cost nothing)",
            highlight=False,
        )
        return False
    problems = Problems()
    out.mkdir(parents=True, exist_ok=True)

    async def go() -> tuple[judge.JudgeRun, dict[str, Any]]:
        client = LLMClient(settings)
        client.batch_progress = lambda status, done, total: console.print(
            f"judge batch {status}: {done}/{total} requests", highlight=False
        )
        try:
            run = await judge.run_judge(client, chosen, repeats, include_final, out, problems)
        finally:
            await client.aclose()
        return run, client.usage()

    try:
        run, usage = asyncio.run(go())
    except FatalError as exc:
        raise fail(f"judge: {exc}") from None
    except KeyboardInterrupt:
        raise fail(
            "interrupted; judge answers received so far are cached: run the same command to resume", 130
        ) from None
    table, per_sample = judge.aggregate(run, [m.reference.sample_id for m in chosen], repeats)
    kinds: dict[str, list[str]] = {}
    for m in chosen:
        kinds.setdefault(m.reference.kind, []).append(m.reference.sample_id)
    by_kind = {kind: judge.aggregate(run, kinds[kind], repeats)[0] for kind in KINDS if kind in kinds}
    judge.attach(
        results,
        table,
        per_sample,
        problems,
        {"judge_model": settings.model, "prompt_version": judge.prompt_version(), "usage": usage, "kinds": by_kind},
    )
    return True
