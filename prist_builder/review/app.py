"""The review web app (Starlette): routes over a :class:`~prist_builder.review.index.RunIndex`.

Routes:

- ``GET /``: the sample list (filters in the query string, see :class:`Filters`).
- ``GET /sample/{id}``: one sample; ``POST /sample/{id}/{accept|reject|edit|reset}``: decisions.
- ``GET /image/{image_id}``: the photo bytes of an image record of the run (by id only).
- ``GET /mask/{sample_id}``: the sample's mask layer (transparent PNG; a multi-target
  sample's union); ``?target=N``: the layer of target ``N`` (0-based, answer order) of a
  multi-target sample, in its colour. An empty-target sample has no layer.
- ``GET /rejects``: what the build set aside (``rejects.jsonl``).
- ``GET|POST /login``: asks for the access token when one is set.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from prist_builder.review import decisions
from prist_builder.review.index import Filters, RunIndex
from prist_builder.review.render import has_layer, image_bytes, overlays, sample_layer_png
from prist_builder.review.security import Guard, is_loopback, login_response, new_csrf, same
from prist_builder.review.views import environment, list_view, neighbour_ids, sample_view

STATIC_DIR = Path(__file__).resolve().parent / "static"
IMAGE_CACHE = 64
"""Photos kept in memory (encoded bytes)."""
MASK_CACHE = 256
"""Mask layers kept in memory (PNG bytes)."""
CACHE_SECONDS = 3600
"""Browser cache lifetime of photos and mask layers."""
DONE_MESSAGES = {"edit": "Edit saved.", "reset": "Decisions reset.", "accept": "Accepted.", "reject": "Rejected."}


class ReviewApp:
    """State shared by the routes: the index, the reviewer's name, the templates, secrets."""

    def __init__(self, index: RunIndex, reviewer: str, token: str | None) -> None:
        self.index = index
        self.reviewer = reviewer
        self.token = token
        self.csrf = new_csrf()
        self.env = environment()
        self.env.globals.update(
            csrf=self.csrf, reviewer=reviewer, run_name=index.run.name, static="/static", report=False
        )
        self.photo = functools.lru_cache(maxsize=IMAGE_CACHE)(self._photo)
        self.mask = functools.lru_cache(maxsize=MASK_CACHE)(self._mask)

    def page(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """Render template ``name`` as an HTML response."""
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status_code)

    def _photo(self, image_id: str) -> bytes:
        return image_bytes(self.index.images[image_id])

    def _mask(self, sample_id: str, target: int | None) -> bytes:
        sample = self.index.sample(sample_id)
        if sample is None:
            raise KeyError(f"no sample {sample_id!r}")
        return sample_layer_png(sample, target)

    # --- pages --------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        """``GET /``: one page of the sample list under the query's filters."""
        self.index.refresh()
        filters = Filters.from_query(dict(request.query_params))
        return self.page("list.html", **list_view(self.index, filters))

    def sample_page(self, request: Request, sample_id: str, status_code: int = 200, **extra: Any) -> Response:
        """The sample page (404 page for an unknown id); ``extra`` carries a refused action back."""
        self.index.refresh()
        sample = self.index.sample(sample_id)
        if sample is None:
            return self.page("error.html", 404, message=f"no sample {sample_id!r} in this run")
        filters = Filters.from_query(dict(request.query_params))
        previous, following = neighbour_ids(self.index, filters, sample)
        photo = {
            "src": f"/image/{quote(sample.image.image_id, safe='')}",
            "width": sample.image.width,
            "height": sample.image.height,
        }
        base = f"/mask/{quote(sample_id, safe='')}"
        layers = [base if target is None else f"{base}?target={target}" for target in overlays(sample)]
        view = sample_view(self.index, sample, photo, layers)
        done = DONE_MESSAGES.get(request.query_params.get("done", ""))
        return self.page(
            "sample.html",
            status_code,
            s=view,
            query=filters.query(),
            previous=previous,
            following=following,
            done=done,
            **extra,
        )

    async def sample(self, request: Request) -> Response:
        """``GET /sample/{id}``."""
        return self.sample_page(request, request.path_params["sample_id"])

    async def image(self, request: Request) -> Response:
        """``GET /image/{image_id}``: the photo's bytes, only for image ids of the run (404 otherwise)."""
        image_id = request.path_params["image_id"]
        record = self.index.images.get(image_id)
        if record is None:
            return Response("not an image of this run", status_code=404, media_type="text/plain")
        from prist_builder.sources import InputRejected  # numpy, Pillow: on the first photo, not at start

        try:
            data = await run_in_threadpool(self.photo, image_id)
        except InputRejected as exc:
            return Response(f"image unavailable: {exc}", status_code=410, media_type="text/plain")
        return Response(
            data,
            media_type=record.mime,
            headers={"Cache-Control": f"private, max-age={CACHE_SECONDS}", "ETag": f'"{record.sha256}"'},
        )

    async def mask_layer(self, request: Request) -> Response:
        """``GET /mask/{sample_id}[?target=N]``: a transparent mask layer PNG: without ``target``
        the whole mask (a multi-target sample's union); 404 when the sample has no such layer
        (no mask, an empty target, a target it does not have)."""
        sample_id = request.path_params["sample_id"]
        sample = self.index.sample(sample_id)
        raw = request.query_params.get("target")
        target = None if raw is None else _int(raw)
        if sample is None or not has_layer(sample, target):
            return Response("no such mask layer for this sample", status_code=404, media_type="text/plain")
        data = await run_in_threadpool(self.mask, sample_id, target)
        return Response(data, media_type="image/png", headers={"Cache-Control": f"private, max-age={CACHE_SECONDS}"})

    async def rejects(self, request: Request) -> Response:
        """``GET /rejects``: the build's ``rejects.jsonl``."""
        return self.page("rejects.html", rejects=self.index.rejects)

    # --- actions ------------------------------------------------------------------------
    async def act(self, request: Request) -> Response:
        """``POST /sample/{id}/{action}``: append a decision, then go on (accept/reject: next sample).

        A refused action re-renders the page with status 422 and the rule; a form without the
        process's CSRF value gets 403 and writes nothing.
        """
        sample_id, action = request.path_params["sample_id"], request.path_params["action"]
        form = await request.form()
        if not same(str(form.get("csrf", "")), self.csrf):
            return Response("stale or missing form token; reload the page", status_code=403, media_type="text/plain")
        self.index.refresh()
        sample = self.index.sample(sample_id)
        if sample is None:
            return self.page("error.html", 404, message=f"no sample {sample_id!r} in this run")
        filters = Filters.from_query(dict(request.query_params))
        try:
            if action == "accept":
                decision = decisions.accept_decision(sample, self.reviewer)
            elif action == "reject":
                decision = decisions.reject_decision(sample, self.reviewer, str(form.get("reason", "")))
            elif action == "edit":
                turn = _int(form.get("turn"))
                decision = decisions.edit_decision(
                    sample, self.reviewer, turn, str(form.get("text", "")), self.index.bounds
                )
            elif action == "reset":
                decision = decisions.reset_decision(sample, self.reviewer)
            else:
                return self.page("error.html", 404, message=f"unknown action {action!r}")
        except decisions.ActionRefused as exc:
            attempt = {
                "action": action,
                "turn": _int(form.get("turn")),
                "text": str(form.get("text", "")),
                "reason": str(form.get("reason", "")),
            }
            return self.sample_page(request, sample_id, 422, refused=str(exc), attempt=attempt)
        await run_in_threadpool(self.index.decide, decision)
        target = sample_id
        if action in ("accept", "reject"):
            _, following = neighbour_ids(self.index, filters, sample)
            if following is None:
                return RedirectResponse("/" + ("?" + urlencode(filters.query()) if filters.query() else ""), 303)
            target = following
        query = {**filters.query(), "done": action}
        return RedirectResponse(f"/sample/{quote(target, safe='')}?{urlencode(query)}", status_code=303)

    # --- token --------------------------------------------------------------------------
    def login_page(self, request: Request, status_code: int = 200, wrong: bool = False) -> Response:
        """The page asking for the access token; it returns to the requested URL."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.page("login.html", status_code, target=target if target != "/login" else "/", wrong=wrong)

    async def login(self, request: Request) -> Response:
        """``GET|POST /login``: ask for the token; a right one sets the session cookie."""
        if request.method == "GET":
            return self.login_page(request)
        form = await request.form()
        response = login_response(self.token, str(form.get("token", "")), str(form.get("next", "/")))
        if response is None:
            return self.page("login.html", 401, target=str(form.get("next", "/")), wrong=True)
        return response


def _int(value: Any) -> int:
    """A form field as an int, ``-1`` when it is not one."""
    try:
        return int(str(value))
    except ValueError:
        return -1


def create_app(
    run: Path, reviewer: str, host: str = "127.0.0.1", token: str | None = None, index: RunIndex | None = None
) -> Starlette:
    """The review app of a run folder (the run is joined once, here).

    Args:
        run: the run folder.
        reviewer: name written into every decision.
        host: the address the server will bind; decides the host-header check.
        token: access token; required (see :func:`prist_builder.review.security.check_bind`) off loopback.
        index: an already loaded index (tests, benchmarks).

    Raises:
        FileNotFoundError: ``run`` is not a run folder.
    """
    state = ReviewApp(index or RunIndex.load(run), reviewer, token)
    routes = [
        Route("/", state.home),
        Route("/sample/{sample_id}", state.sample),
        Route("/sample/{sample_id}/{action}", state.act, methods=["POST"]),
        Route("/image/{image_id}", state.image),
        Route("/mask/{sample_id}", state.mask_layer),
        Route("/rejects", state.rejects),
        Route("/login", state.login, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [Middleware(Guard, token=token, loopback=is_loopback(host), login_page=state.login_page)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.review = state
    return app
