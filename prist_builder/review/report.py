"""``prist review RUN --report out.html``: every page of the review app in one static HTML file.

Photos and mask layers are embedded as ``data:`` URIs; each photo is embedded once (a CSS
class per image) however many samples show it. The file has no script and needs no server:
the list links to each sample's section, the mask toggle is a plain checkbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from markupsafe import Markup

from prist_builder.review.app import STATIC_DIR
from prist_builder.review.index import Filters, RunIndex
from prist_builder.review.render import data_uri, image_bytes, overlays, sample_layer_png
from prist_builder.review.views import environment, list_view, sample_view
from prist_builder.sources import InputRejected

PHOTO_CLASS = "ph-{}"
"""CSS class name of the n-th embedded photo."""


def build_report(run: Path, out: Path, index: RunIndex | None = None) -> int:
    """Write the static report of ``run`` to ``out``; returns the number of samples in it.

    Images that cannot be read any more (moved, changed since the build) are left out and
    named in the page instead.

    Raises:
        FileNotFoundError: ``run`` is not a run folder.
        OSError: ``out`` cannot be written.
    """
    index = index or RunIndex.load(run)
    env = environment()
    classes: dict[str, str] = {}
    css_rules: list[str] = []
    missing: dict[str, str] = {}
    for image_id, record in index.images.items():
        try:
            data = image_bytes(record)
        except InputRejected as exc:
            missing[image_id] = str(exc)
            continue
        classes[image_id] = PHOTO_CLASS.format(len(classes))
        css_rules.append(f".{classes[image_id]}{{background-image:url({data_uri(record.mime, data)})}}")
    views = []
    for sample in index.samples:
        photo = {
            "cls": classes.get(sample.image.image_id, "missing"),
            "width": sample.image.width,
            "height": sample.image.height,
            "missing": missing.get(sample.image.image_id),
        }
        layers = [data_uri("image/png", sample_layer_png(sample, target)) for target in overlays(sample)]
        views.append(sample_view(index, sample, photo, layers))
    css = (STATIC_DIR / "style.css").read_text(encoding="utf-8") + "\n".join(css_rules)
    listing = list_view(index, Filters(size=max(1, len(index.rows))))
    html = env.get_template("report.html").render(
        report=True,
        inline_css=Markup(css.replace("</", "<\\/")),
        run_name=index.run.name,
        reviewer=None,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        samples=views,
        **listing,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return len(views)
