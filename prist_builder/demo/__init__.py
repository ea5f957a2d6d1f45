"""The offline demo: real photos that ship inside scikit-image and scikit-learn, with
Labelme region annotations authored for this project (``demo/labelme/``).

Nothing is downloaded: :func:`materialise` copies the photos out of the installed packages.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

LABELME_DIR = Path(__file__).parent / "labelme"
"""Packaged Labelme files, one per demo photo (``imagePath`` is the photo's file name)."""

PHOTO_PACKAGES: dict[str, tuple[str, str]] = {
    "astronaut.png": ("skimage", "data"),
    "coffee.png": ("skimage", "data"),
    "chelsea.png": ("skimage", "data"),
    "rocket.jpg": ("skimage", "data"),
    "china.jpg": ("sklearn", "datasets/images"),
    "flower.jpg": ("sklearn", "datasets/images"),
}
"""Photo file name -> (package, folder inside the package)."""


class DemoDataError(RuntimeError):
    """A demo photo's package is not installed (``pip install 'prist[demo]'``)."""


def photo_path(name: str) -> Path:
    """Where an installed package keeps a demo photo.

    Raises:
        DemoDataError: the package holding it is not installed.
    """
    package, folder = PHOTO_PACKAGES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise DemoDataError(f"{name} ships with {package}, which is not installed: pip install 'prist[demo]'")
    path = Path(spec.origin).parent / folder / name
    if not path.is_file():
        raise DemoDataError(f"{path}: missing from the installed {package}")
    return path


def annotated_photos() -> list[str]:
    """File names of the photos that have a packaged Labelme file."""
    import json

    names = []
    for path in sorted(LABELME_DIR.glob("*.json")):
        names.append(json.loads(path.read_text(encoding="utf-8"))["imagePath"])
    return names


def materialise(dest: Path) -> tuple[Path, Path]:
    """Copy the demo photos into ``dest/images`` and return ``(images_dir, labelme_dir)``."""
    images = Path(dest) / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in annotated_photos():
        target = images / name
        if not target.exists():
            shutil.copyfile(photo_path(name), target)
    return images, LABELME_DIR
