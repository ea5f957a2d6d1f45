"""The ``openai`` provider: the three PRIST steps written by GPT-4o or any OpenAI-compatible model.

Each step is one conversation with the model (Appendix B.2, Figure 7): a system and a
user message from ``prompts/``, the image as a data URL, and a strict JSON response format
generated from :mod:`.answers`. This module owns the task (prompts, answer rules); how the
request is sent, cached, re-asked, retried and paid for is :mod:`prist_builder.llm`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from prist_builder import prompts
from prist_builder.llm.client import (
    MAX_LISTED_ERRORS,
    AnswerRuleError,
    LLMClient,
    NoValidAnswer,
    RequestRefused,
    StructuredRequest,
    explain,
)
from prist_builder.llm.images import (
    AsIs,
    PreparedImage,
    PreparedImages,
    as_is,
    image_part,
    image_tokens,
)
from prist_builder.providers.assemble import make_dialogue
from prist_builder.providers.base import Provider, StepContext
from prist_builder.providers.openai import messages as blocks
from prist_builder.providers.openai.answers import DialoguesAnswer, ElementsAnswer, TreeAnswer
from prist_builder.providers.openai.config import OpenAIProviderConfig
from prist_builder.records import (
    DialogueRecord,
    Element,
    ElementAttributes,
    ElementsRecord,
    ImageRecord,
    TreeRecord,
    Turn,
)
from prist_builder.records.limits import MAX_CHILDREN, MIN_TARGETS, OBJ_TOKEN, SEG_TOKEN
from prist_builder.sources import InputRejected, LoadedImage, read_image_bytes

MAX_TOKENS = {"elements": 1500, "tree": 2500, "dialogues": 4000}
"""Completion token cap per step."""
MIN_BARE_ELEMENTS = 3
"""Elements asked of an image without regions (Figure 7a: at least 3)."""
CHARS_PER_TOKEN = 4
"""Rough text size of a token, for prompt token estimates."""
READ_AHEAD = 2
"""Inputs in progress per request slot: the build works on this many times ``--concurrency``
inputs at once, so while requests wait for the server the next inputs are read and their
images prepared; the transport still keeps at most ``--concurrency`` requests in flight."""
PREPARED_IMAGES_DIR = "images"
"""Prepared images (see :class:`~prist_builder.llm.images.PreparedImages`) live in this
folder of the response cache."""
A = TypeVar("A", bound=BaseModel)
R = TypeVar("R")


@dataclass(frozen=True)
class SentImage:
    """Prepares the image of a step 1 input as sent to the model where the input is read (a
    ``--workers`` process or a thread), so that re-encoding never runs in the build's
    event loop. Picklable.

    Returns only what the build cannot get cheaply itself: the image's size when it goes
    as its own bytes (:class:`~prist_builder.llm.images.AsIs`), ``None`` when it was
    re-encoded into the on-disk store (the build reads it there), the whole prepared image
    when there is no such store.
    """

    store: Path | None
    """The on-disk store's folder (``None``: memory only), shared with the build."""
    max_side: int | None
    """Downscale images to this long side in pixels (``None``: never)."""

    def __call__(self, image: LoadedImage) -> PreparedImage | AsIs | None:
        """Prepare the image of ``image`` (its record's SHA-256, bytes and MIME type)."""
        record = image.record
        if self.store is not None:
            size = as_is(image.data, record.mime, self.max_side)
            if size is not None:
                return size
        prepared = PreparedImages(self.store).get(record.sha256, image.data, record.mime, self.max_side)
        return prepared if self.store is None else None


class OpenAIProvider(Provider):
    """Provider backed by an OpenAI-compatible chat completions API.

    Args:
        config: every option (:class:`.config.OpenAIProviderConfig`); keyword options build one.
        seed: sent as the request ``seed`` (the build passes its run seed).
        client: a ready LLM client (tests); by default one is made from ``config``.

    Raises:
        pydantic.ValidationError: an option is out of its bounds (names the field).
    """

    name = "openai"
    needs_pixels = False

    def __init__(
        self,
        config: OpenAIProviderConfig | None = None,
        seed: int | None = None,
        client: LLMClient | None = None,
        **options: Any,
    ) -> None:
        self.config = config if config is not None else OpenAIProviderConfig(**options)
        self.client = client or LLMClient(self.config, seed=seed)
        self.concurrency = self.config.concurrency * READ_AHEAD
        self._images = PreparedImages(self.config.resolved_cache_dir() / PREPARED_IMAGES_DIR)

    # -- plumbing --------------------------------------------------------------------
    @property
    def model(self) -> str:
        """The model name requests go to."""
        return self.config.model

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.config.model_dump(mode="json", exclude_none=True)}

    async def aclose(self) -> None:
        await self.client.aclose()

    def open_accounting(self, path: Path) -> bool:
        self.client.open_accounting(path)
        return True

    async def drive(self, step: str, run: Path, run_pass: Callable[[], Awaitable[Any]]) -> list[Any]:
        """Online: one pass. Batch: passes that answer from the cache, with a batch between two."""
        return await self.client.drive(step, run, run_pass)

    def input_preparer(self) -> Callable[[LoadedImage], object]:
        """Step 1 inputs get their image as sent where they are read (see :class:`SentImage`)."""
        return SentImage(self._images.root, self.config.max_side)

    async def _image(
        self, record: ImageRecord, data: bytes | None = None, prepared: object = None
    ) -> tuple[PreparedImage, int]:
        """The image as sent and its token estimate, prepared once per image and run
        (see :class:`~prist_builder.llm.images.PreparedImages`). ``prepared``: the image as
        step 1's reader made it. What costs no decoding (a file read, a hash, base64) runs
        here; decoding and re-encoding run in a worker thread, off the event loop.

        Raises:
            InputRejected: the recorded image is gone or changed (no ``data`` given).
        """
        max_side = self.config.max_side
        picture = prepared if isinstance(prepared, PreparedImage) else self._images.remembered(record.sha256, max_side)
        if isinstance(prepared, AsIs) and data is not None:
            picture = prepared.prepared(data, record.mime, record.sha256)
        if picture is not None:
            self._images.adopt(record.sha256, max_side, picture)
        elif data is None and record.embedded:  # the image sits in a Labelme JSON file: parse it off the loop

            def prepare() -> PreparedImage:
                return self._images.get(record.sha256, read_image_bytes(record), record.mime, max_side)

            picture = await asyncio.to_thread(prepare)
        else:
            raw = data if data is not None else read_image_bytes(record)
            picture = self._images.ready(record.sha256, raw, record.mime, max_side)
            if picture is None:
                picture = await asyncio.to_thread(self._images.get, record.sha256, raw, record.mime, max_side)
        return picture, image_tokens(picture.width, picture.height, self.config.detail)

    def _request(
        self, step: str, url: str, image_tokens_: int, answer_model: type[A], **fields: object
    ) -> StructuredRequest[A]:
        """The step's request: its prompt template filled in, the image attached."""
        template = prompts.load(step)
        system, user = template.render(**fields)
        content = [{"type": "text", "text": user}, image_part(url, self.config.detail)]
        messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        return StructuredRequest(
            messages,
            answer_model,
            MAX_TOKENS[step],
            template.version,
            (len(system) + len(user)) // CHARS_PER_TOKEN + image_tokens_,
        )

    async def _converse(self, step: str, where: str, request: StructuredRequest[A], accept: Callable[[A], R]) -> R:
        """Ask through the LLM client; a refusal or no valid answer rejects the input."""
        try:
            return await self.client.ask(request, accept)
        except RequestRefused as exc:
            raise InputRejected(f"{where}: {step}: {exc.reason}", where, raw=exc.raw) from None
        except NoValidAnswer as exc:
            raise InputRejected(f"{where}: {step}: {exc.reason}", where, raw=exc.raw) from None

    # -- step 1 ----------------------------------------------------------------------
    async def elements(self, image: LoadedImage, ctx: StepContext) -> list[Element]:
        record = image.record
        where = record.annotation_path or record.path
        regions = [r for r in record.regions if not r.ignore]
        picture, tokens = await self._image(record, image.data, image.prepared)
        url = picture.url
        if regions:
            rule = (
                "the id of the marked region this element is; every element is one marked region,"
                " each region at most once"
            )
            minimum = f"one element for each of the {len(regions)} marked regions,"
        else:
            rule = "always null (no regions are marked on this image)"
            minimum = str(MIN_BARE_ELEMENTS)
        request = self._request(
            "elements",
            url,
            tokens,
            ElementsAnswer,
            region_rule=rule,
            regions_block=blocks.regions_block(regions, picture.scale),
            minimum_elements=minimum,
        )
        known = {r.region_id for r in regions}

        def accept(answer: ElementsAnswer) -> list[Element]:
            seen: set[str] = set()
            problems = []
            for index, item in enumerate(answer.elements):
                if regions and item.region_id not in known:
                    problems.append(
                        f"elements[{index}].region_id {item.region_id!r} is not a marked region"
                        f" ({', '.join(sorted(known))})"
                    )
                elif regions and item.region_id in seen:
                    problems.append(f"elements[{index}].region_id {item.region_id!r} is used twice")
                elif not regions and item.region_id is not None:
                    problems.append(f"elements[{index}].region_id must be null: this image has no marked regions")
                seen.add(item.region_id or "")
            needed = MIN_TARGETS if regions else MIN_BARE_ELEMENTS
            if len(answer.elements) < needed:
                problems.append(f"{len(answer.elements)} elements; at least {needed} are needed")
            if problems:
                raise AnswerRuleError("; ".join(problems))
            return [
                Element(
                    element_id=f"e{i}",
                    name=item.name,
                    description=item.description,
                    region_id=item.region_id,
                    attributes=ElementAttributes(
                        colour=item.colour,
                        position=item.position,
                        count=item.count if item.count and item.count > 0 else None,
                        visible_text=item.visible_text,
                    ),
                )
                for i, item in enumerate(answer.elements)
            ]

        return await self._converse("elements", where, request, accept)

    # -- step 2 ----------------------------------------------------------------------
    async def tree(self, elements: ElementsRecord, targets: list[Element], ctx: StepContext) -> TreeRecord:
        record = elements.image
        where = record.annotation_path or record.path
        picture, tokens = await self._image(record)
        url = picture.url
        request = self._request(
            "tree",
            url,
            tokens,
            TreeAnswer,
            elements_block=blocks.elements_block(elements),
            targets=blocks.targets_line(targets),
            max_children=MAX_CHILDREN,
            min_nodes=ctx.min_turns - 1,
            max_nodes=ctx.max_turns - 1,
        )
        wanted = {t.element_id for t in targets}

        def accept(answer: TreeAnswer) -> TreeRecord:
            tree = TreeRecord.model_validate(
                {
                    "image_id": elements.image_id,
                    "provider": self.name,
                    "root": answer.root,
                    "nodes": [n.model_dump() for n in answer.nodes],
                    "edges": [(e.parent, e.child) for e in answer.edges],
                    "paths": [p.model_dump() for p in answer.paths],
                },
                context=ctx.validation(),
            )
            got = {p.target_element_id for p in tree.paths}
            if got != wanted:
                raise AnswerRuleError(f"paths must cover exactly the targets {sorted(wanted)}, got {sorted(got)}")
            for path in tree.paths:
                if not ctx.min_turns - 1 <= len(path.node_ids) <= ctx.max_turns - 1:
                    raise AnswerRuleError(
                        f"the path to {path.target_element_id} has {len(path.node_ids)} nodes;"
                        f" it needs {ctx.min_turns - 1} to {ctx.max_turns - 1}"
                    )
            return tree

        return await self._converse("tree", where, request, accept)

    # -- step 3 ----------------------------------------------------------------------
    async def dialogues(self, elements: ElementsRecord, tree: TreeRecord, ctx: StepContext) -> list[DialogueRecord]:
        record = elements.image
        where = record.annotation_path or record.path
        picture, tokens = await self._image(record)
        url = picture.url
        request = self._request(
            "dialogues",
            url,
            tokens,
            DialoguesAnswer,
            elements_block=blocks.elements_block(elements),
            paths_block=blocks.paths_block(tree, elements),
            min_turns=ctx.min_turns,
            max_turns=ctx.max_turns,
            obj=OBJ_TOKEN,
            seg=SEG_TOKEN,
        )
        paths = {p.target_element_id: p for p in tree.paths}

        def accept(answer: DialoguesAnswer) -> list[DialogueRecord]:
            got = [d.target_element_id for d in answer.dialogues]
            if sorted(got) != sorted(paths):
                raise AnswerRuleError(f"write exactly one conversation per path target {sorted(paths)}, got {got}")
            out, problems = [], []
            for index, item in enumerate(answer.dialogues):  # every broken dialogue, so one re-ask fixes all
                turns = []
                for turn in item.turns:
                    turns += [Turn(role="user", content=turn.question), Turn(role="assistant", content=turn.answer)]
                try:
                    out.append(
                        make_dialogue(elements, paths[item.target_element_id], turns, item.focus, self.name, ctx)
                    )
                except ValidationError as exc:
                    problems.append(f"dialogues[{index}] ({item.target_element_id}): {explain(exc).lstrip('- ')}")
            if problems:
                raise AnswerRuleError("\n- ".join(problems[:MAX_LISTED_ERRORS]))
            return out

        return await self._converse("dialogues", where, request, accept)
