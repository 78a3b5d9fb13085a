"""The brand images Home Assistant shows for the integration."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

ROOT = Path(__file__).parent.parent
BRAND = ROOT / "custom_components" / "rtsp_announcer" / "brand"
SCRIPT = ROOT / "scripts" / "brand.py"

ICONS = {"icon.png": 256, "icon@2x.png": 512}
LOGOS = {"logo.png": 128, "logo@2x.png": 256}
NAMES = sorted(
    f"{prefix}{name}" for prefix in ("", "dark_") for name in (*ICONS, *LOGOS)
)


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("brand_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up while the script runs.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize("name", NAMES)
def test_image_is_a_transparent_png(name: str) -> None:
    path = BRAND / name
    assert path.is_file(), name
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        low, high = image.getchannel("A").getextrema()
        assert low == 0, "no transparent background"
        assert high == 255, "nothing opaque drawn"


@pytest.mark.parametrize("name", NAMES)
def test_image_size(name: str) -> None:
    base = name.removeprefix("dark_")
    with Image.open(BRAND / name) as image:
        width, height = image.size
    if base in ICONS:
        assert (width, height) == (ICONS[base], ICONS[base])
    else:
        assert min(width, height) == LOGOS[base]
        assert width > height, "the logo is landscape"
    if name.startswith("dark_"):
        with Image.open(BRAND / base) as light:
            assert light.size == (width, height)


@pytest.mark.parametrize("name", NAMES)
def test_image_is_trimmed(name: str) -> None:
    with Image.open(BRAND / name) as image:
        box = image.getchannel("A").getbbox()
        width, height = image.size
    assert box is not None
    left, top, right, bottom = box
    # The drawing reaches both ends of the image in one direction at least,
    # and both ends of a logo's longer side.
    across = (left, right) == (0, width)
    down = (top, bottom) == (0, height)
    assert across or down
    if width > height:
        assert across


def test_script_reproduces_the_images(tmp_path: Path) -> None:
    written = _load_script().write_brand(tmp_path)
    assert sorted(path.name for path in written) == NAMES
    assert sorted(path.name for path in BRAND.iterdir()) == NAMES
    for name in NAMES:
        assert (tmp_path / name).read_bytes() == (BRAND / name).read_bytes(), name


def test_script_writes_to_the_directory_given(tmp_path: Path) -> None:
    script = _load_script()
    assert script.main([str(tmp_path / "out")]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == NAMES
    assert script.main(["a", "b"]) == 2
