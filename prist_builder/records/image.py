"""The image record: one input photo with its source regions (paper section 3.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prist_builder.records.rle import RLE

SourceKind = Literal["labelme", "coco", "images", "prist-json"]
"""Where an image record comes from; ``prist-json`` is an import of the authors' released split."""


class SourceRegion(BaseModel):
    """One annotated object instance of an image, as a mask.

    Shapes that share a label and a Labelme ``group_id`` (or one COCO annotation) form
    one region. Regions labelled ``__ignore__`` are kept with ``ignore=True`` and are
    never targets.

    Attributes:
        region_id: id unique within the image (``"r0"``, ``"r1"``, ...).
        label: the class label as written in the source annotation.
        group_id: Labelme ``group_id`` or COCO annotation id; ``None`` for a lone shape.
        shape_types: Labelme shape types (``polygon``, ``rectangle``, ...) or COCO kinds
            (``coco_polygon``, ``coco_rle``) merged into this region.
        source: where the region came from, ``"<file>#shapes[i,j]"`` or ``"<file>#annotations[id]"``.
        mask: the region's ``(H, W)`` bool mask in COCO RLE.
        area: mask area in pixels.
        bbox: ``[x, y, width, height]`` in pixels of the mask's bounding box.
        ignore: ``True`` for ``__ignore__`` regions.
    """

    model_config = ConfigDict(extra="forbid")

    region_id: str
    label: str
    group_id: int | None = None
    shape_types: list[str]
    source: str
    mask: RLE
    area: int = Field(gt=0, description="pixels")
    bbox: list[int] = Field(min_length=4, max_length=4, description="[x, y, w, h] in pixels")
    ignore: bool = False


class ImageRecord(BaseModel):
    """One input image and its source annotations.

    Attributes:
        image_id: stable id of the image (the source file's stem).
        An imported image whose file is absent (``source="prist-json"`` only) has
        ``width = height = 0``, ``sha256 = ""`` and no regions: see :attr:`absent`.
        path: absolute path of the image file, or of the Labelme file when the
            pixels are embedded in it (``embedded=True``).
        embedded: the pixels are the Labelme file's base64 ``imageData``.
        width, height: image size in pixels.
        sha256: hex digest of the encoded image bytes.
        mime: MIME type of the encoded image (``image/jpeg``, ``image/png``, ...).
        source: where the regions come from: ``labelme``, ``coco``, or bare ``images``.
        annotation_path: the Labelme or COCO file the regions came from, if any.
        regions: the usable regions, in source order.
        skipped_shapes: shapes kept out of ``regions`` and why (e.g. a ``line`` has no area).
    """

    model_config = ConfigDict(extra="forbid")

    image_id: str
    path: str
    embedded: bool = False
    width: int = Field(ge=0)
    height: int = Field(ge=0)
    sha256: str = Field(pattern=r"^([0-9a-f]{64})?$")
    mime: str
    source: SourceKind
    annotation_path: str | None = None
    regions: list[SourceRegion] = Field(default_factory=list)
    skipped_shapes: list[str] = Field(default_factory=list)

    @property
    def absent(self) -> bool:
        """The run holds no pixels for this image (an import whose file was missing)."""
        return not self.sha256

    @model_validator(mode="after")
    def _present_or_imported(self) -> ImageRecord:
        if self.sha256 and self.width > 0 and self.height > 0:
            return self
        if self.source != "prist-json":
            raise ValueError("width, height and sha256 are required (only a prist-json import may lack its image)")
        if self.sha256 or self.width or self.height or self.regions:
            raise ValueError("an absent image has width = height = 0, sha256 = '' and no regions")
        return self

    def region(self, region_id: str) -> SourceRegion:
        """Return the region with ``region_id``; raises ``KeyError`` if absent."""
        for region in self.regions:
            if region.region_id == region_id:
                return region
        raise KeyError(f"image {self.image_id}: no region {region_id!r}")
