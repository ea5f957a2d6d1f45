"""The review app in a real headless Chromium (Debian's ``chromium`` driven by Playwright).

Flow on the demo run: filter the list, open a sample, edit a turn, reject another, then read
``reviews.jsonl``. On a run with a multi-target and an empty-target sample: the target-kind
filter, one differently coloured overlay per target with its legend, the empty badge.
Screenshots of sample pages are saved under the test's tmp folder and, when
``PRIST_ARTIFACTS`` is set, copied there.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from test_review_helpers import add_target_kinds, copy_run, live_server

from prist_builder.samples import iter_samples

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 15_000
"""Longest wait for one browser step, milliseconds."""

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run the browser tests",
        allow_module_level=True,
    )
playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert run_cli("demo", "--out", out).exit_code == 0
    return out


def _save_artifact(path: Path) -> None:
    target = os.environ.get("PRIST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_review_in_chromium(demo: Path, tmp_path: Path) -> None:
    run = copy_run(demo, tmp_path)
    with live_server(run, reviewer="ada") as base, playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        page.goto(base + "/")
        total = int(page.text_content("#matched"))
        assert total > 3
        page.fill("#focus-search", "flower")
        page.select_option("select[name=status]", "unreviewed")
        page.click("#apply-filters")
        page.wait_for_url("**/?*q=flower*")
        matched = int(page.text_content("#matched"))
        assert 2 <= matched == page.locator("a.sample-link").count() < total
        page.click("a.sample-link >> nth=0")
        page.wait_for_selector("#status")
        assert "flower" in page.text_content(".focus-text")
        sample_url = page.url
        sample_id = page.text_content("h1").split()[0]

        # photo and mask layer loaded; the toggle hides the mask (keyboard m)
        page.wait_for_function(
            "document.querySelector('img.base').naturalWidth > 0 && document.querySelector('img.mask').naturalWidth > 0"
        )
        assert page.is_visible("img.mask")
        page.keyboard.press("m")
        assert not page.is_visible("img.mask")
        page.keyboard.press("m")
        assert page.locator("svg.tree g.on-path").count() >= 2
        assert page.locator("svg.tree g.target").count() == 1

        # an edit that breaks a build rule is refused with the rule, nothing written
        page.locator("#turn-1 details.edit summary").click()
        page.fill("#turn-1 textarea", "It is the [OBJ]thing[SEG] up there.")
        page.click("#turn-1 button[type=submit]")
        page.wait_for_selector("#refused")
        assert "only the final answer may" in page.text_content("#refused")
        assert not (run / "reviews.jsonl").exists()

        # a valid edit of turn 1 (keyboard: e opens the final answer; we edit the second message)
        page.goto(sample_url)
        page.locator("#turn-1 details.edit summary").click()
        page.fill("#turn-1 textarea", "I can see the sky, an island and two trees.")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#done")
        assert page.text_content("#status") == "edited"
        assert "an island and two trees" in page.text_content("#turn-1 .text")
        shot = tmp_path / "review-sample-page.png"
        page.screenshot(path=str(shot), full_page=True)
        _save_artifact(shot)

        # reject the next sample with a reason, from the keyboard
        with page.expect_navigation():
            page.keyboard.press("n")
        other = page.text_content("h1").split()[0]
        page.keyboard.press("r")
        page.keyboard.type("the answer names the wrong object")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        browser.close()
        assert [e for e in errors if "422" not in e] == []  # 422: the refused edit

    lines = [json.loads(line) for line in (run / "reviews.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(d["sample_id"], d["action"]) for d in lines] == [(sample_id, "edit"), (other, "reject")]
    assert lines[0]["turn_index"] == 1 and lines[0]["reviewer"] == "ada"
    assert lines[0]["after"] == "I can see the sky, an island and two trees."
    assert lines[0]["before"] and lines[0]["before"] != lines[0]["after"]
    assert lines[1]["reason"] == "the answer names the wrong object"
    assert other != sample_id


TINTS = """() => Array.from(document.querySelectorAll('img.mask')).map((img) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && data[i + 3] < 255) seen.add(data[i] + ',' + data[i + 1] + ',' + data[i + 2]);
  }
  const shown = img.getBoundingClientRect().width > 0 && getComputedStyle(img).display !== 'none';
  return {tints: Array.from(seen), shown: shown};
})"""
"""Per mask layer on the page: the colours of its tinted (half-transparent) pixels and whether it is shown."""


def test_target_kinds_in_chromium(demo: Path, tmp_path: Path) -> None:
    run = copy_run(demo, tmp_path)
    multi_id, empty_id = add_target_kinds(run, thing="red kite")
    targets = next(s for s in iter_samples(run) if s.sample_id == multi_id).dialogue.targets
    with live_server(run) as base, playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        # the list filters by target kind
        page.goto(base + "/")
        total = int(page.text_content("#matched"))
        page.select_option("#kind-filter", "multi")
        page.click("#apply-filters")
        page.wait_for_url("**/?*kind=multi*")
        assert int(page.text_content("#matched")) == 1 < total
        assert page.locator("a.sample-link").all_text_contents() == [multi_id]
        assert page.text_content("td.kind").split() == ["multi", "2"]
        page.select_option("#kind-filter", "empty")
        page.click("#apply-filters")
        page.wait_for_url("**/?*kind=empty*")
        assert page.locator("a.sample-link").all_text_contents() == [empty_id]

        # multi: two overlays in two colours, a legend naming each target in answer order
        page.goto(f"{base}/sample/{multi_id.replace('+', '%2B')}")
        page.wait_for_function(
            "Array.from(document.querySelectorAll('img.mask')).every((i) => i.complete && i.naturalWidth > 0)"
        )
        layers = page.evaluate(TINTS)
        assert len(layers) == 2 and all(layer["shown"] for layer in layers)
        assert all(len(layer["tints"]) == 1 for layer in layers) and layers[0]["tints"] != layers[1]["tints"]
        legend = page.locator("ol.target-legend li")
        assert legend.count() == 2
        swatches = [
            legend.nth(i).locator(".swatch").evaluate("e => getComputedStyle(e).backgroundColor") for i in (0, 1)
        ]
        for swatch, layer in zip(swatches, layers, strict=True):  # canvas reads back premultiplied alpha: +-2
            drawn = [int(c) for c in layer["tints"][0].split(",")]
            shown = [int(c) for c in swatch.removeprefix("rgb(").removesuffix(")").split(",")]
            assert max(abs(a - b) for a, b in zip(drawn, shown, strict=True)) <= 2, (swatch, layer)
        foci = page.locator("ol.target-legend q.target-focus").all_text_contents()
        assert foci == [t.focus for t in targets]
        # one target hidden from its legend entry; the other stays
        legend.nth(0).locator("label").click()
        shown = [layer["shown"] for layer in page.evaluate(TINTS)]
        assert shown == [False, True]
        page.keyboard.press("2")  # digit keys toggle target N
        assert [layer["shown"] for layer in page.evaluate(TINTS)] == [False, False]
        page.keyboard.press("1")
        page.keyboard.press("2")
        assert [layer["shown"] for layer in page.evaluate(TINTS)] == [True, True]
        page.keyboard.press("m")  # the mask toggle hides every layer
        assert [layer["shown"] for layer in page.evaluate(TINTS)] == [False, False]
        shot = tmp_path / "review-multi-target.png"
        page.keyboard.press("m")
        page.screenshot(path=str(shot), full_page=True)
        _save_artifact(shot)

        # empty: the badge, no overlay, the mask toggle disabled
        page.goto(f"{base}/sample/{empty_id}")
        assert page.is_visible(".empty-badge")
        assert page.text_content(".empty-badge .badge") == "empty target: no red kite in the image"
        assert page.locator("img.mask").count() == 0 and page.is_disabled(".mask-toggle")
        shot = tmp_path / "review-empty-target.png"
        page.screenshot(path=str(shot), full_page=True)
        _save_artifact(shot)
        browser.close()
    assert errors == []
