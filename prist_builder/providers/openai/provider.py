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

from pydantic import BaseModel

from prist_builder import prompts
from prist_builder.llm.client import LLMClient, NoValidAnswer, RequestRefused, StructuredRequest
from prist_builder.llm.images import (
    AsIs,
    PreparedImage,
    PreparedImages,
    as_is,
    image_part,
    image_tokens,
)
from prist_builder.llm.strict_schema import schema_tokens
from prist_builder.providers.base import Provider, StepContext
from prist_builder.providers.openai import answers
from prist_builder.providers.openai import messages as blocks
from prist_builder.providers.openai import slots as kinds_of
from prist_builder.providers.openai.config import OpenAIProviderConfig
from prist_builder.providers.openai.marks import draw_marks, marks_key
from prist_builder.providers.openai.rules import (
    accept_dialogues,
    accept_elements,
    accept_tree,
    marked_regions,
    step_cap,
    style_turns,
)
from prist_builder.providers.regions import region_relations
from prist_builder.records import DialogueRecord, Element, ElementsRecord, ImageRecord, Reject, TreeRecord
from prist_builder.sources import InputRejected, LoadedImage, PartlyRejected, read_image_bytes

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
class Sent:
    """What step 1's reader prepared for one input (see :class:`SentImage`)."""

    clean: PreparedImage | AsIs | None
    """The clean image: its size when it goes as its own bytes, the prepared image when
    there is no on-disk store, ``None`` when it is in the store or not sent at all."""
    marked: PreparedImage | None
    """The Set-of-Mark image when there is no on-disk store; ``None`` when it is in the
    store (the build reads it there) or the image has no marked regions."""


@dataclass(frozen=True)
class SentImage:
    """Prepares the images of a step 1 input as sent to the model where the input is read
    (a ``--workers`` process or a thread), so that re-encoding and drawing the marks never
    run in the build's process or event loop. Picklable.

    Returns (:class:`Sent`) only what the build cannot get cheaply itself: what went into
    the on-disk store is read there.
    """

    store: Path | None
    """The on-disk store's folder (``None``: memory only), shared with the build."""
    max_side: int | None
    """Downscale images to this long side in pixels (``None``: never)."""
    clean_too: bool = False
    """Send the clean image besides the marked one (``--send-clean-image``)."""

    def __call__(self, image: LoadedImage) -> Sent:
        """Prepare the images of ``image`` (its record's SHA-256, bytes, MIME type and regions)."""
        record = image.record
        regions = marked_regions(record)
        clean = self._clean(image) if not regions or self.clean_too else None
        marked = None
        if regions:
            images = PreparedImages(self.store)
            key = marks_key(record.sha256, regions)
            picture = images.derived(key, self.max_side, lambda: draw_marks(image.data, regions, self.max_side))
            marked = picture if self.store is None else None
        return Sent(clean, marked)

    def _clean(self, image: LoadedImage) -> PreparedImage | AsIs | None:
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
    tiny_target_share = 0.01  # its Set-of-Mark id tag hides most of such a region (targets.MIN_TARGET_SHARE)
    needs_pixels = False
    heavy_annotated_reads = True  # Set-of-Mark drawing and a JPEG re-encode: ~20 ms of CPU an input

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

    def open_accounting(self, path: Path, fsync: bool = True) -> bool:
        self.client.open_accounting(path, fsync=fsync)
        return True

    async def drive(self, step: str, run: Path, run_pass: Callable[[], Awaitable[Any]]) -> list[Any]:
        """Online: one pass. Batch: passes that answer from the cache, with a batch between two."""
        return await self.client.drive(step, run, run_pass)

    def input_preparer(self) -> Callable[[LoadedImage], object]:
        """Step 1 inputs get their image as sent where they are read (see :class:`SentImage`)."""
        return SentImage(self._images.root, self.config.max_side, self.config.send_clean_image)

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
        return picture, image_tokens(picture.width, picture.height, self.config.detail, self.config.model)

    async def _pictures(
        self, record: ImageRecord, data: bytes | None = None, prepared: object = None
    ) -> tuple[list[PreparedImage], int]:
        """The images one request sends and their prompt tokens: with marked regions the
        Set-of-Mark image (:mod:`.marks`), then the clean one with ``--send-clean-image``;
        without regions the clean image alone. All have one size."""
        regions = marked_regions(record)
        pictures: list[PreparedImage] = []
        clean = prepared.clean if isinstance(prepared, Sent) else prepared
        if regions:
            max_side = self.config.max_side

            def make() -> PreparedImage:  # only when step 1's reader did not (a later step, a read-only store)
                return draw_marks(data or read_image_bytes(record), regions, max_side)

            key = marks_key(record.sha256, regions)
            marked = prepared.marked if isinstance(prepared, Sent) else None
            if marked is not None:
                self._images.adopt(key, max_side, marked)
            else:
                marked = self._images.remembered(key, max_side)
            if marked is None:
                marked = await asyncio.to_thread(self._images.derived, key, max_side, make)
            pictures.append(marked)
        if not regions or self.config.send_clean_image:
            pictures.append((await self._image(record, data, clean))[0])
        tokens = sum(image_tokens(p.width, p.height, self.config.detail, self.config.model) for p in pictures)
        return pictures, tokens

    def _request(
        self,
        step: str,
        record: ImageRecord,
        pictures: list[PreparedImage],
        tokens: int,
        answer_model: type[A],
        cap: int,
        **fields: object,
    ) -> StructuredRequest[A]:
        """The step's request: its prompt template filled in, the images attached."""
        template = prompts.load(step)
        marked = bool(marked_regions(record))
        first = pictures[0]
        line = blocks.image_line(first.width, first.height, marked, marked and len(pictures) > 1)
        system, user = template.render(image_line=line, **fields)
        content = [{"type": "text", "text": user}, *(image_part(p.url, self.config.detail) for p in pictures)]
        messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        text = (len(system) + len(user)) // CHARS_PER_TOKEN
        return StructuredRequest(
            messages, answer_model, cap, template.version, text + tokens + schema_tokens(answer_model)
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
        regions = marked_regions(record)
        pictures, tokens = await self._pictures(record, image.data, image.prepared)
        ids = tuple(r.region_id for r in regions)
        request = self._request(
            "elements",
            record,
            pictures,
            tokens,
            answers.elements_answer(ids),
            step_cap("elements", len(regions)),
            regions_block=blocks.regions_block(
                regions,
                pictures[0].width,
                pictures[0].height,
                pictures[0].scale,
                [r.region_id for r in record.regions if r.ignore],
            ),
            task=blocks.elements_task(regions),
        )
        return await self._converse("elements", where, request, lambda answer: accept_elements(answer, ids))

    # -- step 2 ----------------------------------------------------------------------
    async def tree(self, elements: ElementsRecord, targets: list[Element], ctx: StepContext) -> TreeRecord:
        """Step 2; with ``ctx.slots`` its paths are the slots' (multi-target and empty-target
        paths too, see :mod:`.slots`), else one single-target path per element of ``targets``."""
        record = elements.image
        where = record.annotation_path or record.path
        pictures, tokens = await self._pictures(record)
        low, high = style_turns(ctx)
        below = (low - 1, high - 1)
        slots = ctx.slots
        if slots is None:
            wanted = [t.element_id for t in targets]
            among, empty, line, kinds = targets, [], blocks.targets_line(targets), ""
        else:
            wanted = kinds_of.path_ids(slots)
            among = kinds_of.slot_elements(slots)
            empty = [p for p, s in zip(wanted, slots, strict=True) if s.kind == "empty"]
            line, kinds = kinds_of.targets_line(slots), kinds_of.tree_kinds(slots)
        request = self._request(
            "tree",
            record,
            pictures,
            tokens,
            answers.tree_answer(tuple(wanted), tuple(empty)),
            step_cap("tree", len(wanted)),
            elements_block=blocks.elements_block(elements, pictures[0].scale),
            relations_block=blocks.relations_block(region_relations(marked_regions(record)), elements, among),
            targets=line,
            kinds=kinds,
            path_nodes=blocks.chain_length(*below),
            sharing=blocks.sharing_rule(len(wanted)),
        )
        multi = kinds_of.multi_fields(slots or [])
        check = kinds_of.AbsentCheck(elements, empty, self.config.max_reasks + 1)

        def accept(answer: Any) -> TreeRecord:
            keep, extra = check.check(answer, wanted, ctx.validation()["min_targets"]) if empty else (wanted, {})
            return accept_tree(answer, elements, keep, self.name, ctx, {**multi, **extra})

        return await self._converse("tree", where, request, accept)

    # -- step 3 ----------------------------------------------------------------------
    async def dialogues(self, elements: ElementsRecord, tree: TreeRecord, ctx: StepContext) -> list[DialogueRecord]:
        """Step 3 in one request for the image; with ``ctx.paths`` (a partly built tree
        retried) for those paths alone, each shown as in the whole request. A conversation
        that still breaks a rule after the re-asks is rejected alone, under its sample id,
        and the others are kept (:class:`~prist_builder.sources.PartlyRejected`)."""
        record = elements.image
        where = record.annotation_path or record.path
        pictures, tokens = await self._pictures(record)
        whole, only = tree, ctx.paths
        if only is not None:  # the tree's other paths have their dialogues: not asked again
            tree = tree.model_copy(update={"paths": [p for p in tree.paths if p.target_element_id in only]})
        ids = [p.target_element_id for p in tree.paths]
        members = tuple(e for p in tree.paths for e in p.target_element_ids)
        targets = [
            elements.element(e)
            for p in tree.paths
            if p.kind != "empty"
            for e in (p.target_element_ids or [p.target_element_id])
        ]
        request = self._request(
            "dialogues",
            record,
            pictures,
            tokens,
            answers.dialogues_answer(tuple(ids), members),
            step_cap("dialogues", len(ids)),
            elements_block=blocks.elements_block(elements, pictures[0].scale),
            relations_block=blocks.relations_block(region_relations(marked_regions(record)), elements, targets),
            scene=blocks.scene_line(tree),
            paths_block=blocks.paths_block(whole, elements, only),
            kinds=kinds_of.dialogue_kinds(tree),
        )
        seed = ctx.rng.randrange(2**32)  # the final turns' draws: the same on a re-ask

        def accept(answer: Any) -> list[DialogueRecord]:
            return accept_dialogues(answer, elements, tree, self.name, ctx, seed)

        try:
            return await self.client.ask(request, accept)
        except NoValidAnswer as exc:
            if exc.partial is None:
                raise InputRejected(f"{where}: dialogues: {exc.reason}", where, raw=exc.raw) from None
            kept, broken = exc.partial  # the good dialogues stay; each broken one is its own reject
            rejects = [
                Reject(
                    input_id=f"{tree.image_id}-{target}",
                    image_id=tree.image_id,
                    step="dialogues",
                    reason=f"{where}: dialogues: no valid conversation for {target} in"
                    f" {self.config.max_reasks + 1} attempts: {problem}",
                    source_file=where,
                    raw=item,
                )
                for target, problem, item in broken
            ]
            raise PartlyRejected(kept, rejects) from None
        except RequestRefused as exc:
            raise InputRejected(f"{where}: dialogues: {exc.reason}", where, raw=exc.raw) from None
