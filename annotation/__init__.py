"""Annotation import and mask handling: Labelme and COCO regions, one rasteriser, RLE."""
