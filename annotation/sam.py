"""SAM pre-labels: prompt Segment Anything with the target's box, keep its best mask.

Uses transformers' ``SamModel`` / ``SamProcessor`` with the Pillow image processor (no
torchvision needed), so the same code loads ``facebook/sam-vit-huge`` (or any SAM
checkpoint) from a local folder and a tiny random ``SamConfig`` in tests. torch and
transformers are the ``model`` extra: importing this module without them raises an
``ImportError`` that says what to install, and nothing else in the project imports it
at module level.

The prompt is a box ``[x, y, w, h]`` in pixels: the grounded region's box, or a box given
per sample (e.g. a model's box answer). SAM returns three candidate masks; the one with the
highest predicted IoU wins. The mask becomes Labelme polygons
(:func:`~prist_builder.annotation.polygons.fit_polygons`: tolerance
:data:`~prist_builder.annotation.polygons.SIMPLIFY_TOLERANCE` pixels, none if that would
drop the round-trip IoU under 0.95); the pre-label records that IoU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

try:
    import torch
    from transformers import SamModel, SamProcessor
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "SAM pre-labels need torch and transformers: pip install torch==2.13.0 first (CPU build),"
        " then pip install -e '.[model]'"
    ) from exc

from prist_builder.annotation.polygons import fit_polygons

MASK_THRESHOLD = 0.0
"""Logit above which a pixel is in SAM's mask (SAM's own default)."""


@dataclass
class SamResult:
    """SAM's answer to one box prompt.

    Attributes:
        mask: ``(H, W) bool`` best mask in the image's frame.
        score: SAM's predicted IoU of that mask.
        polygons: the mask as Labelme polygons (pixels).
        polygon_iou: IoU of the polygons re-rasterised against ``mask`` (1.0 for an empty mask).
    """

    mask: np.ndarray
    score: float
    polygons: list[list[list[float]]]
    polygon_iou: float


class SamPrelabeler:
    """A SAM model on CPU (or ``device``) answering box prompts.

    Args:
        model: a loaded ``SamModel``.
        processor: its ``SamProcessor``.
        device: torch device name.
    """

    def __init__(self, model: SamModel, processor: SamProcessor, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device

    @classmethod
    def from_folder(cls, path: Path, device: str = "cpu") -> SamPrelabeler:
        """Load a SAM checkpoint saved with ``save_pretrained`` (e.g. a local ``facebook/sam-vit-huge``).

        Raises:
            FileNotFoundError: ``path`` is not a folder.
            OSError: transformers cannot load it (no network is used: ``local_files_only``).
        """
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: not a folder with a SAM checkpoint")
        model = SamModel.from_pretrained(path, local_files_only=True)
        try:
            processor = SamProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError):
            processor = SamProcessor(SamImageProcessorPil())
        return cls(model, processor, device)

    def predict_box(self, image: Image.Image, box: list[float]) -> SamResult:
        """Segment the object in ``box`` (``[x, y, w, h]`` pixels) of ``image`` (EXIF-corrected, any mode)."""
        x, y, w, h = box
        rgb = image.convert("RGB")
        inputs = self.processor(images=rgb, input_boxes=[[[x, y, x + w, y + h]]], return_tensors="pt")
        with torch.no_grad():
            out = self.model(
                pixel_values=inputs["pixel_values"].to(self.device),
                input_boxes=inputs["input_boxes"].to(self.device),
                multimask_output=True,
            )
        masks = self.processor.image_processor.post_process_masks(
            out.pred_masks.cpu(),
            inputs["original_sizes"],
            inputs["reshaped_input_sizes"],
            mask_threshold=MASK_THRESHOLD,
        )[0][0]  # (candidates, H, W) for the one box
        scores = out.iou_scores[0, 0].cpu().numpy()
        best = int(np.argmax(scores))
        mask = np.asarray(masks[best].numpy(), dtype=bool)
        polygons, polygon_iou = fit_polygons(mask)
        return SamResult(mask=mask, score=float(scores[best]), polygons=polygons, polygon_iou=polygon_iou)
