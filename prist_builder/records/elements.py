"""Step 1 output: the visible elements of one image (paper section 3.2.1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prist_builder.records.image import ImageRecord


class ElementAttributes(BaseModel):
    """Attributes of one element; every field is optional.

    Attributes:
        colour: dominant colour name of the element's pixels (``"red"``, ``"dark gray"``).
        position: cell of a 3x3 grid over the image holding the element's centroid
            (``"top left"``, ``"center"``, ``"bottom right"``, ...).
        relative_size: ``tiny``/``small``/``medium``/``large`` from the area fraction.
        area_fraction: element area divided by image area, in ``[0, 1]``.
        count: how many instances of the same label the image holds.
        visible_text: text written on the element, when any is legible.
    """

    model_config = ConfigDict(extra="forbid")

    colour: str | None = None
    position: str | None = None
    relative_size: str | None = None
    area_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    visible_text: str | None = None


class Element(BaseModel):
    """One visible object of an image, ``o_i`` in the paper's notation.

    Attributes:
        element_id: id unique within the image (``"e0"``, ...).
        name: short noun phrase (``"coffee cup"``).
        description: one or two sentences describing the element.
        attributes: measured or model-written attributes.
        region_id: the source region grounding the element; ``None`` when the element
            comes from pixels alone and still needs a mask.
    """

    model_config = ConfigDict(extra="forbid")

    element_id: str
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    attributes: ElementAttributes = Field(default_factory=ElementAttributes)
    region_id: str | None = None


class ElementsRecord(BaseModel):
    """All elements of one image: one line of ``elements.jsonl``.

    Raises (on validation): ``ValueError`` for duplicate element ids or a ``region_id``
    that the image record does not hold.
    """

    model_config = ConfigDict(extra="forbid")

    image_id: str
    provider: str
    image: ImageRecord
    elements: list[Element] = Field(min_length=1)

    @model_validator(mode="after")
    def _links(self) -> ElementsRecord:
        if self.image.image_id != self.image_id:
            raise ValueError(f"image.image_id {self.image.image_id!r} != image_id {self.image_id!r}")
        ids = [e.element_id for e in self.elements]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate element ids in {ids}")
        known = {r.region_id for r in self.image.regions}
        for element in self.elements:
            if element.region_id is not None and element.region_id not in known:
                raise ValueError(f"element {element.element_id}: unknown region_id {element.region_id!r}")
        return self

    def element(self, element_id: str) -> Element:
        """Return the element with ``element_id``; raises ``KeyError`` if absent."""
        for element in self.elements:
            if element.element_id == element_id:
                return element
        raise KeyError(f"image {self.image_id}: no element {element_id!r}")
