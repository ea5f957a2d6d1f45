"""``prist review`` without a browser: list filters, decisions, edit rules, escaping, access control."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import run_cli
from starlette.testclient import TestClient
from test_review_helpers import SERVER_START_S, copy_run, free_port

from prist_builder import appendlog
from prist_builder.records import Reject
from prist_builder.records.curation import REVIEWS_FILE, ReviewDecision
from prist_builder.review.app import create_app
from prist_builder.review.report import build_report
from prist_builder.review.security import BindRefused, check_bind
from prist_builder.samples import iter_samples

LOCAL = "http://127.0.0.1"
SCRIPT = "<script>alert('x')</script>"
TOKEN = "a-long-enough-access-token"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert run_cli("demo", "--out", out).exit_code == 0
    return out


@pytest.fixture
def run(demo: Path, tmp_path: Path) -> Path:
    return copy_run(demo, tmp_path)


def client(run: Path, **kwargs) -> TestClient:
    return TestClient(create_app(run, "tester", **kwargs), base_url=LOCAL)


def matched(html: str) -> int:
    return int(re.search(r'id="matched">(\d+)<', html).group(1))


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def decisions(run: Path) -> list[dict]:
    path = run / REVIEWS_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_list_filters_counts_and_paging(run: Path) -> None:
    web = client(run)
    samples = list(iter_samples(run))
    page = web.get("/").text
    assert matched(page) == len(samples) and f"unreviewed {len(samples)}" in page
    assert matched(web.get("/?q=TREE").text) == sum("tree" in s.dialogue.focus.lower() for s in samples)
    assert matched(web.get("/?image=china").text) == sum(s.image.image_id == "china" for s in samples)
    assert matched(web.get("/?provider=offline").text) == len(samples)
    assert matched(web.get("/?provider=nobody").text) == 0
    grains = sum(matched(web.get(f"/?granularity={g}").text) for g in ("coarse", "medium", "fine", "none"))
    assert grains == len(samples)
    assert matched(web.get("/?status=accepted").text) == 0
    assert matched(web.get("/?rejects=no").text) == len(samples)
    paged = web.get("/?size=5&page=2").text
    assert "page 2 of" in paged and "samples 6&ndash;10" in paged
    assert paged.count('class="sample-link"') == 5
    assert web.get("/?page=999&size=notanumber").status_code == 200


def test_decisions_append_and_fold(run: Path) -> None:
    web = client(run)
    first, second, third = [s.sample_id for s in list(iter_samples(run))[:3]]
    token = csrf(web.get(f"/sample/{first}").text)
    answer = web.post(f"/sample/{first}/accept", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith(f"/sample/{second}")
    web.post(f"/sample/{second}/reject", data={"csrf": token, "reason": "wrong  colour\n named"})
    web.post(f"/sample/{third}/edit", data={"csrf": token, "turn": "1", "text": "A calmer\r\nanswer. "})
    lines = decisions(run)
    assert [(d["sample_id"], d["action"]) for d in lines] == [(first, "accept"), (second, "reject"), (third, "edit")]
    assert all(d["reviewer"] == "tester" and d["time"] for d in lines)
    assert lines[1]["reason"] == "wrong colour named"
    assert lines[2]["after"] == "A calmer\nanswer." and lines[2]["before"] and lines[2]["turn_index"] == 1
    by_id = {s.sample_id: s for s in iter_samples(run)}
    assert by_id[first].review.status == "accepted"
    assert by_id[second].review.status == "rejected" and not by_id[second].finished
    assert by_id[third].review.status == "edited" and by_id[third].dialogue.turns[1].content == "A calmer\nanswer."
    assert by_id[third].original_turns[1].content == lines[2]["before"]
    assert matched(web.get("/?status=rejected").text) == 1
    page = web.get(f"/sample/{third}").text
    assert "A calmer\nanswer." in page and "build text" in page
    web.post(f"/sample/{second}/reset", data={"csrf": token})
    assert matched(web.get("/?status=rejected").text) == 0


@pytest.mark.parametrize(
    ("turn", "text", "rule"),
    [
        ("1", "It is the [OBJ]thing[SEG].", "turns[1] uses [OBJ]/[SEG]; only the final answer may"),
        ("last", "No template here.", "the final answer must hold [OBJ]&lt;focus&gt;[SEG] exactly once"),
        ("last", "[OBJ]something else[SEG]", "the final answer segments &#39;something else&#39; but focus is"),
        ("0", "   ", "turns[0].content: String should have at least 1 character"),
        ("99", "text", "turn 99 does not exist"),
    ],
)
def test_invalid_edit_refused_with_rule(run: Path, turn: str, text: str, rule: str) -> None:
    web = client(run)
    sample = next(iter_samples(run))
    index = str(len(sample.dialogue.turns) - 1) if turn == "last" else turn
    token = csrf(web.get(f"/sample/{sample.sample_id}").text)
    page = web.post(f"/sample/{sample.sample_id}/edit", data={"csrf": token, "turn": index, "text": text})
    assert page.status_code == 422
    assert rule in page.text
    assert 'id="refused"' in page.text
    assert decisions(run) == []


def test_reject_needs_reason_and_forms_need_csrf(run: Path) -> None:
    web = client(run)
    sample_id = next(iter_samples(run)).sample_id
    token = csrf(web.get(f"/sample/{sample_id}").text)
    refused = web.post(f"/sample/{sample_id}/reject", data={"csrf": token, "reason": "  "})
    assert refused.status_code == 422 and "a reject needs a reason" in refused.text
    assert web.post(f"/sample/{sample_id}/accept", data={}).status_code == 403
    assert web.post(f"/sample/{sample_id}/accept", data={"csrf": "forged"}).status_code == 403
    assert web.post("/sample/nope/accept", data={"csrf": token}).status_code == 404
    assert decisions(run) == []


def _inject_script(run: Path) -> str:
    """Put a script into the first dialogue's first message (as a model might write it)."""
    path = run / "dialogues.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["turns"][0]["content"] = f"What is this? {SCRIPT}"
    lines[0] = json.dumps(first)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return first["sample_id"]


def _inject_in_tree_and_elements(run: Path) -> None:
    for name, edit in (
        ("trees.jsonl", lambda r: r["nodes"][0].update(question=f"Why {SCRIPT}?")),
        ("elements.jsonl", lambda r: r["elements"][0].update(description=f"A {SCRIPT} thing.")),
    ):
        path = run / name
        lines = path.read_text(encoding="utf-8").splitlines()
        first = json.loads(lines[0])
        edit(first)
        lines[0] = json.dumps(first)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_injected_script_is_shown_as_text(run: Path, tmp_path: Path) -> None:
    sample_id = _inject_script(run)
    _inject_in_tree_and_elements(run)
    web = client(run)
    token = csrf(web.get(f"/sample/{sample_id}").text)
    web.post(f"/sample/{sample_id}/reject", data={"csrf": token, "reason": f"has {SCRIPT}"})
    page = web.get(f"/sample/{sample_id}")
    assert page.text.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 5  # turn, tree x2, element, reason
    assert SCRIPT not in page.text
    assert SCRIPT not in web.get("/").text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    out = tmp_path / "report.html"
    build_report(run, out)
    assert SCRIPT not in out.read_text(encoding="utf-8")


def test_no_path_traversal(run: Path) -> None:
    web = client(run)
    for url in (
        "/image/..%2F..%2F..%2Fetc%2Fpasswd",
        "/image/../../etc/passwd",
        "/image/%2Fetc%2Fpasswd",
        "/static/../../../../etc/passwd",
        "/static/..%2F..%2Fapp.py",
        "/mask/..%2Fmanifest.json",
        "/image/manifest.json",
        "/sample/..%2F..%2Fetc%2Fpasswd",
    ):
        answer = web.get(url)
        assert answer.status_code in (400, 404), url
        assert "root:" not in answer.text
    sample = next(iter_samples(run))
    photo = web.get(f"/image/{sample.image.image_id}")
    assert photo.status_code == 200 and photo.headers["content-type"] == sample.image.mime
    mask = web.get(f"/mask/{sample.sample_id}")
    assert mask.status_code == 200 and mask.content.startswith(b"\x89PNG")


def test_host_header_checked_on_loopback(run: Path) -> None:
    answer = TestClient(create_app(run, "tester"), base_url="http://attacker.example").get("/")
    assert answer.status_code == 400


def test_token_asked_for_off_loopback(run: Path) -> None:
    web = TestClient(create_app(run, "tester", host="0.0.0.0", token=TOKEN), base_url="http://192.0.2.7:8750")
    asked = web.get("/?q=cat")
    assert asked.status_code == 401 and 'name="token"' in asked.text
    assert web.get("/image/chelsea").status_code == 401
    assert web.post("/login", data={"token": "wrong", "next": "/"}).status_code == 401
    entered = web.post("/login", data={"token": TOKEN, "next": "/?q=cat"}, follow_redirects=False)
    assert entered.status_code == 303 and entered.headers["location"] == "/?q=cat"
    assert TOKEN not in entered.headers["set-cookie"]
    assert web.get("/?q=cat").status_code == 200
    bearer = TestClient(create_app(run, "tester", host="0.0.0.0", token=TOKEN), base_url="http://192.0.2.7")
    assert bearer.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    offsite = web.post("/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False)
    assert offsite.headers["location"] == "/"


def test_bind_needs_token_off_loopback(run: Path) -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    with pytest.raises(BindRefused, match="PRIST_REVIEW_TOKEN"):
        check_bind("0.0.0.0", None)
    with pytest.raises(BindRefused, match="at least"):
        check_bind("192.168.1.5", "short")
    check_bind("0.0.0.0", TOKEN)
    result = run_cli("review", run, "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 1


def test_decisions_from_another_process_show_up(run: Path) -> None:
    web = client(run)
    sample_id = next(iter_samples(run)).sample_id
    assert 'id="status">unreviewed<' in web.get(f"/sample/{sample_id}").text
    appendlog.append(
        run / REVIEWS_FILE,
        [ReviewDecision(sample_id=sample_id, reviewer="other", time="t", action="reject", reason="blurry")],
    )
    page = web.get(f"/sample/{sample_id}").text
    assert 'id="status">rejected<' in page and "Rejected by other: blurry" in page


def test_static_report(run: Path, tmp_path: Path) -> None:
    samples = list(iter_samples(run))
    out = tmp_path / "share" / "report.html"
    result = run_cli("review", run, "--report", out)
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    for sample in samples:
        assert f'id="s-{sample.sample_id}"' in html and f'href="#s-{sample.sample_id}"' in html
    images = {s.image.image_id for s in samples}
    assert html.count("background-image:url(data:") == len(images)  # each photo embedded once
    assert html.count('class="mask" src="data:image/png;base64,') == sum(s.mask is not None for s in samples)
    assert "<script" not in html and "/static/" not in html and 'action="' not in html


def test_cli_serves_the_app(run: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "prist_builder", "review", str(run), "--port", str(port), "--reviewer", "cli"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, answer = time.monotonic() + SERVER_START_S, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200
        assert "reviewer <b>cli</b>" in answer.text
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert f"open http://127.0.0.1:{port}/" in output


def test_cli_refuses_a_broken_reviews_log(run: Path) -> None:
    (run / REVIEWS_FILE).write_text('{"sample_id": "x"}\n', encoding="utf-8")
    result = run_cli("review", run, "--report", run / "out.html")
    assert result.exit_code == 1
    assert not (run / "out.html").exists()


def test_build_rejects_filter_and_page(run: Path) -> None:
    reject = Reject(input_id="china/dialogue-e7", image_id="china", step="dialogues", reason=f"bad answer {SCRIPT}")
    appendlog.append(run / "rejects.jsonl", [reject])
    web = client(run)
    china = sum(s.image.image_id == "china" for s in iter_samples(run))
    assert matched(web.get("/?rejects=yes").text) == china
    assert matched(web.get("/?rejects=no").text) == len(list(iter_samples(run))) - china
    page = web.get("/rejects").text
    assert "china/dialogue-e7" in page and "bad answer &lt;script&gt;" in page and SCRIPT not in page
