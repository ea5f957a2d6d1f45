"""The review app in a real headless Chromium (Debian's ``chromium`` driven by Playwright).

Flow on the demo run: filter the list, open a sample, edit a turn, reject another, then read
``reviews.jsonl``. A screenshot of the sample page is saved under the test's tmp folder and,
when ``PRIST_ARTIFACTS`` is set, copied there.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from test_review_helpers import copy_run, live_server

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
