"""``prist review`` with multi-target and empty-target samples (issue 22), without a browser:
the target-kind filter and index, one coloured mask layer per target with a legend, the empty
badge without an overlay, escaping of every target's focus, the static report."""

from __future__ import annotations

import html
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import run_cli
from PIL import Image
from starlette.testclient import TestClient
from test_review_helpers import SERVER_START_S, add_target_kinds, copy_run, free_port

from prist_builder import appendlog
from prist_builder.annotation.masks import decode
from prist_builder.records.curation import FINAL_MASKS_FILE, FinalMask
from prist_builder.review import index_store
from prist_builder.review.app import create_app
from prist_builder.review.index import Filters, RunIndex
from prist_builder.review.render import TARGET_PALETTE, target_colour
from prist_builder.review.report import build_report
from prist_builder.samples import empty_rle, iter_samples

LOCAL = "http://127.0.0.1"
SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert run_cli("demo", "--out", out).exit_code == 0
    return out


@pytest.fixture
def run(demo: Path, tmp_path: Path) -> Path:
    return copy_run(demo, tmp_path)


def client(run: Path) -> TestClient:
    return TestClient(create_app(run, "tester"), base_url=LOCAL)


def matched(html: str) -> int:
    return int(re.search(r'id="matched">(\d+)<', html).group(1))


def sample_ids(html: str) -> list[str]:
    return re.findall(r'class="sample-link" href="/sample/[^"]+">([^<]+)<', html)


def layer_colour(png: bytes) -> tuple[int, int, int]:
    """The tint of a mask layer: the RGB of its half-transparent (inner) pixels."""
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    inner = rgba[(rgba[..., 3] > 0) & (rgba[..., 3] < 255)]
    colours = {tuple(int(c) for c in px[:3]) for px in inner}
    assert len(colours) == 1, colours
    return colours.pop()


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_kind_filter_index_and_list_column(run: Path) -> None:
    singles = len(list(iter_samples(run)))
    multi_id, empty_id = add_target_kinds(run)
    index = RunIndex.load(run)
    stored = json.loads((run / index_store.INDEX_FILE).read_text(encoding="utf-8"))
    assert stored["version"] == 3 and stored["fields"][-2:] == ["kind", "targets"]
    kinds = {row[0]: (row[-2], row[-1]) for row in stored["rows"]}
    assert kinds[multi_id] == ("multi", 2) and kinds[empty_id] == ("empty", 0)
    assert sum(kind == ("single", 1) for kind in kinds.values()) == singles
    assert index.kind_counts() == {"single": singles, "multi": 1, "empty": 1}
    assert RunIndex.load(run).from_disk  # the kind comes from the stored index on the next start
    empty_row = index.rows[index.by_id[empty_id]]
    assert empty_row.granularity == "none" and empty_row.kind == "empty"

    web = client(run)
    assert matched(web.get("/").text) == singles + 2
    assert sample_ids(web.get("/?kind=multi").text) == [multi_id]
    assert sample_ids(web.get("/?kind=empty").text) == [empty_id]
    single = web.get("/?kind=single").text
    assert matched(single) == singles and multi_id not in single and empty_id not in single
    assert matched(web.get("/?kind=bogus").text) == singles + 2  # unknown value: no constraint
    assert matched(web.get("/?kind=empty&granularity=none").text) == 1
    page = web.get("/").text
    assert '<option value="multi">' in page and 'id="kind-filter"' in page
    assert '<span class="badge kind-multi">multi</span> 2' in page
    assert '<span class="badge kind-empty">empty</span>' in page
    assert 'href="/?kind=empty">empty 1<' in page
    # paging links and sample navigation keep the filter
    multi_page = web.get(f"/sample/{multi_id}?kind=multi").text
    assert 'href="/?kind=multi"' in multi_page and 'id="next-link"' not in multi_page
    assert Filters.from_query({"kind": "empty"}).query() == {"kind": "empty"}


def test_multi_target_page_one_coloured_layer_per_target(run: Path) -> None:
    multi_id, _ = add_target_kinds(run)
    sample = next(s for s in iter_samples(run) if s.sample_id == multi_id)
    web = client(run)
    page = web.get(f"/sample/{multi_id}").text
    layers = re.findall(r'<img class="mask ([^"]+)" src="([^"]+)"', page)
    assert [cls for cls, _ in layers] == ["t0 k0", "t1 k1"]
    assert [src for _, src in layers] == [f"/mask/{multi_id.replace('+', '%2B')}?target={i}" for i in (0, 1)]
    legend = re.search(r'<ol class="target-legend".*?</ol>', page, re.DOTALL).group(0)
    foci = [html.unescape(f) for f in re.findall(r'<q class="target-focus">([^<]+)</q>', legend)]
    assert foci == [t.focus for t in sample.dialogue.targets]  # answer order
    assert re.findall(r'<li class="(t\d) k\d">', legend) == ["t0", "t1"]
    assert "multi target</span>" in page and "2 targets" in page
    assert page.count('class="target-row"') == 2
    colours = []
    for i, target in enumerate(sample.dialogue.targets):
        answer = web.get(f"/mask/{multi_id}", params={"target": i})
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        colours.append(layer_colour(answer.content))
        rgba = np.asarray(Image.open(io.BytesIO(answer.content)))
        assert np.array_equal(rgba[..., 3] > 0, decode(target.mask).astype(bool))  # that target's pixels only
    assert colours == [hex_rgb(target_colour(0)), hex_rgb(target_colour(1))] and colours[0] != colours[1]
    union = np.asarray(Image.open(io.BytesIO(web.get(f"/mask/{multi_id}").content)))
    assert np.array_equal(union[..., 3] > 0, decode(sample.mask).astype(bool))  # no target: the union
    assert web.get(f"/mask/{multi_id}", params={"target": 2}).status_code == 404
    assert web.get(f"/mask/{multi_id}", params={"target": "x"}).status_code == 404
    # the palette is the stylesheet's: the legend swatch and the overlay share a colour
    css = web.get("/static/style.css").text
    for i, colour in enumerate(TARGET_PALETTE):
        assert f".t{i} {{ --tc: {colour}; }}" in css


def test_single_target_page_as_before(run: Path) -> None:
    multi_id, _ = add_target_kinds(run)
    sample = next(iter_samples(run))
    web = client(run)
    page = web.get(f"/sample/{sample.sample_id}").text
    assert page.count('<img class="mask" src="/mask/') == 1 and "target-legend" not in page
    assert "<kbd>1-9</kbd>" not in page and "<kbd>1-9</kbd>" in web.get(f"/sample/{multi_id}").text
    assert "kind-" not in page.split("<h1>")[1].split("</h1>")[0] and "empty target" not in page
    assert layer_colour(web.get(f"/mask/{sample.sample_id}").content) == (255, 40, 40)
    assert web.get(f"/mask/{sample.sample_id}", params={"target": 0}).status_code == 404


def test_empty_target_badge_and_no_overlay(run: Path) -> None:
    _, empty_id = add_target_kinds(run, thing="red kite")
    web = client(run)
    page = web.get(f"/sample/{empty_id}").text
    assert "empty target: no red kite in the image" in page
    assert '<img class="mask' not in page and "/mask/" not in page
    assert 'class="mask-toggle"' in page and "disabled" in page.split('class="mask-toggle"')[1].split(">")[0]
    assert web.get(f"/mask/{empty_id}").status_code == 404
    assert page.count('class="target-row"') == 0


def test_every_target_focus_is_escaped(run: Path, tmp_path: Path) -> None:
    multi_id, empty_id = add_target_kinds(run, second_focus=f"mug {SCRIPT}", thing=f"kite {SCRIPT}")
    web = client(run)
    multi = web.get(f"/sample/{multi_id}").text
    empty = web.get(f"/sample/{empty_id}").text
    assert SCRIPT not in multi and SCRIPT not in empty and SCRIPT not in web.get("/").text
    assert f'<q class="target-focus">mug {ESCAPED}</q>' in multi
    assert f"empty target: no kite {ESCAPED} in the image" in empty
    out = tmp_path / "report.html"
    build_report(run, out)
    html = out.read_text(encoding="utf-8")
    assert SCRIPT not in html and f"no kite {ESCAPED} in the image" in html


def test_static_report_has_per_target_layers(run: Path, tmp_path: Path) -> None:
    multi_id, empty_id = add_target_kinds(run)
    out = tmp_path / "report.html"
    count = build_report(run, out)
    html = out.read_text(encoding="utf-8")
    singles = count - 2
    assert html.count('<img class="mask" src="data:image/png;base64,') == singles
    multi = html.split(f'id="s-{multi_id}"')[1].split("</section>")[0]
    assert multi.count('<img class="mask t0 k0" src="data:image/png') == 1
    assert multi.count('<img class="mask t1 k1" src="data:image/png') == 1
    empty = html.split(f'id="s-{empty_id}"')[1].split("</section>")[0]
    assert "data:image/png" not in empty and "empty target: no bicycle in the image" in empty


def test_annotated_final_masks_drive_the_layers(run: Path) -> None:
    """Layers follow ``final_masks.jsonl``: per-target masks when recorded, else their union in
    the one-target colour with a note; an empty sample's no-pixel final mask lays nothing."""
    multi_id, empty_id = add_target_kinds(run)
    sample = next(s for s in iter_samples(run) if s.sample_id == multi_id)
    first, second = (t.mask for t in sample.dialogue.targets)
    swapped = FinalMask(
        sample_id=multi_id, mask=sample.mask, rule="adjudicated", time="t", masks=[second, first]
    )  # annotators' masks, here simply the other way round
    nothing = FinalMask(sample_id=empty_id, mask=empty_rle(*first.size), rule="empty", time="t")
    appendlog.append(run / FINAL_MASKS_FILE, [swapped, nothing])
    web = client(run)
    page = web.get(f"/sample/{multi_id}").text
    assert "(rule: adjudicated)" in page and page.count('<img class="mask t') == 2
    layer = np.asarray(Image.open(io.BytesIO(web.get(f"/mask/{multi_id}", params={"target": 0}).content)))
    assert np.array_equal(layer[..., 3] > 0, decode(second).astype(bool))
    empty = web.get(f"/sample/{empty_id}").text
    assert '<img class="mask' not in empty and web.get(f"/mask/{empty_id}").status_code == 404

    union_only = FinalMask(sample_id=multi_id, mask=sample.mask, rule="adjudicated", time="t2")
    appendlog.append(run / FINAL_MASKS_FILE, [union_only])
    page = client(run).get(f"/sample/{multi_id}").text
    assert page.count('<img class="mask" src="/mask/') == 1 and "the overlay is their union" in page
    assert len(re.findall(r'<q class="target-focus">', page)) == 2  # the legend still names both


def test_cli_names_the_target_mix(run: Path) -> None:
    add_target_kinds(run)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "prist_builder", "review", str(run), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, answer = time.monotonic() + SERVER_START_S, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/?kind=empty", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and matched(answer.text) == 1
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "(1 multi-target, 1 empty-target)" in output


@pytest.mark.parametrize(
    ("which", "text", "rule"),
    [
        ("multi", "Sure, [OBJ]hair[SEG].", "the final answer holds 1 [SEG] for 2 targets"),
        ("empty", "It is [OBJ]a bicycle[SEG].", "an empty-target final answer must hold no [OBJ]/[SEG]"),
    ],
)
def test_final_answer_edits_keep_the_target_count(run: Path, which: str, text: str, rule: str) -> None:
    ids = dict(zip(("multi", "empty"), add_target_kinds(run), strict=True))
    sample = next(s for s in iter_samples(run) if s.sample_id == ids[which])
    web = client(run)
    token = re.search(r'name="csrf" value="([^"]+)"', web.get(f"/sample/{sample.sample_id}").text).group(1)
    last = str(len(sample.dialogue.turns) - 1)
    page = web.post(f"/sample/{sample.sample_id}/edit", data={"csrf": token, "turn": last, "text": text})
    assert page.status_code == 422 and rule in html.unescape(page.text)
    assert not (run / "reviews.jsonl").exists()
    kept = sample.dialogue.turns[-1].content.replace("[SEG].", "[SEG], as asked.")
    if which == "multi":  # a reworded answer that keeps every target is accepted
        assert kept != sample.dialogue.turns[-1].content
        done = web.post(f"/sample/{sample.sample_id}/edit", data={"csrf": token, "turn": last, "text": kept})
        assert done.status_code == 200 and "as asked" in done.text
