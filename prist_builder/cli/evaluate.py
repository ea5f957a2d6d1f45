"""``prist evaluate``: score a predictions file (Tables 3 and 4), or compare result files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from prist_builder.cli.console import console, fail
from prist_builder.cli.openai_options import OpenAIOpts, with_openai_options
from prist_builder.evaluate.boxes import CONVENTION_SCALE
from prist_builder.evaluate.tables import (
    granularity_rows,
    markdown,
    problem_rows,
    rich_table,
    table3_rows,
    table4_rows,
    write_csv,
    write_outputs,
)

COMPARE_PLOT, COMPARE_TABLE = "compare.png", "compare"
"""File names ``--compare`` writes into ``--out``."""
WIDEST = 400
"""Most characters per line a table printed into a pipe or file takes."""

InputsArg = Annotated[list[Path], typer.Argument(help="Predictions JSONL; with --compare, results.json files.")]
DataOpt = Annotated[Optional[Path], typer.Option("--data", help="References: a prist export folder or a run folder.")]
SplitOpt = Annotated[str, typer.Option("--split", help="Split of an export folder.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Output folder \\[default: evaluation/<name>].")]
NameOpt = Annotated[Optional[str], typer.Option("--name", help="Row label \\[default: the predictions file's stem].")]
BoxOpt = Annotated[str, typer.Option("--box-coords",
                                     help="Coordinates of <box> answers: pixel, unit (0-1) or thousand (0-1000).")]
FinalTurnOpt = Annotated[bool, typer.Option("--include-final-turn", help="Also score the segmentation answer's text.")]
WordnetOpt = Annotated[Optional[Path], typer.Option("--wordnet", file_okay=False,
                                                    help="nltk data folder holding corpora/wordnet.")]
BertScoreOpt = Annotated[Optional[Path], typer.Option("--bertscore-model",
                                                      help="Local model folder for BERTScore (never downloaded).")]
JudgeOpt = Annotated[bool, typer.Option("--judge", help="Also run the LLM judge (Table 4; uses the OpenAI options).")]
RepeatsOpt = Annotated[int, typer.Option("--repeats", min=1, help="Judge repeats per dialogue (Appendix C.4.2).")]
JudgeLimitOpt = Annotated[Optional[int], typer.Option("--judge-limit", min=1, help="Judge only the first N samples.")]
CompareOpt = Annotated[bool, typer.Option("--compare", help="Compare results.json files: deltas and a PNG plot.")]


def show(table: Table) -> None:
    """Print a table; into a pipe or file at its natural width (no cropped columns)."""
    width = None if console.is_terminal else max(console.width, console.measure(table, options=console.options.update_width(WIDEST)).maximum)
    console.print(table, width=width, crop=width is None)


def print_tables(summary: dict[str, Any]) -> None:
    """Print Table 3, the granularity breakdown, Table 4 (if judged) and the problems."""
    show(rich_table("Table 3: pixel-level RS (percent; Precision/Recall/F1 pixel-wise micro)",
                             table3_rows([summary])))
    rows = granularity_rows(summary)
    if rows:
        show(rich_table("Segmentation by granularity (percent)", rows))
    judged = table4_rows([summary])
    if judged:
        show(rich_table("Table 4: reasoning quality (LLM judge, 0-5)", judged))
    problems = problem_rows(summary)
    if problems:
        show(rich_table("Problems (scored as described in README; see results.json)", problems))


def _compare(paths: list[Path], out: Path) -> None:
    from prist_builder.evaluate.compare import CompareError, delta_rows, load_summary, plot, unique_names

    if len(paths) < 2:
        raise fail("--compare needs at least two results.json files", 2)
    try:
        summaries = unique_names([load_summary(p) for p in paths], paths)
    except CompareError as exc:
        raise fail(str(exc))
    show(rich_table("Table 3 layout", table3_rows(summaries)))
    if table4_rows(summaries):
        show(rich_table("Table 4 layout", table4_rows(summaries)))
    deltas = delta_rows(summaries)
    show(rich_table(f"Deltas against {summaries[0]['name']}", deltas))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{COMPARE_TABLE}.md").write_text(markdown(table3_rows(summaries)) + "\n" + markdown(deltas), encoding="utf-8")
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
        if box_coords not in CONVENTION_SCALE:
            raise fail(f"--box-coords must be one of {', '.join(CONVENTION_SCALE)}, got {box_coords!r}", 2)
        from prist_builder.evaluate.references import ReferenceError
        from prist_builder.evaluate.scoring import ScoringOptions
        from prist_builder.evaluate.scoring import evaluate as run_scoring

        options = ScoringOptions(split=split, box_convention=box_coords,  # type: ignore[arg-type]
                                 include_final_turn=include_final_turn, wordnet_dir=wordnet,
                                 bertscore_model=bertscore_model)
        try:
            results, matched = run_scoring(inputs[0], data, options, name)
        except (FileNotFoundError, ReferenceError, ImportError) as exc:
            raise fail(str(exc))
        target = out or Path("evaluation") / results.name
        opts = OpenAIOpts.from_kwargs(openai)
        if judge or opts.dry_run:
            if not _judge(results, matched, opts, repeats, judge_limit):
                return  # a dry run: the estimate is printed, nothing scored or written
        summary = results.summary()
        written = write_outputs(target, summary, results.per_sample)
        print_tables(summary)
        console.print(f"wrote {len(written)} files to {target} ({', '.join(p.name for p in written)})", highlight=False)
        if (results.problems["counts"].get("missing") or 0) == results.samples and results.samples:
            raise fail("no prediction matched a reference sample id (all scored as empty); check --data and --split")



def _judge(results: Any, matched: Any, opts: OpenAIOpts, repeats: int, limit: int | None) -> bool:
    """Run the LLM judge into ``results``; ``False`` after a dry run (estimate printed only)."""
    raise fail("the LLM judge is not available yet", 2)
