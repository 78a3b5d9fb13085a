"""Draw the brand images of RTSP Announcer.

Home Assistant (2026.3 and newer) shows a custom integration's own icon and logo
from ``custom_components/rtsp_announcer/brand/``. This script draws them, with
Pillow only, the same way every time:

    python scripts/brand.py [OUTDIR]

OUTDIR defaults to that brand folder. The symbol is a loudspeaker sending out
sound waves, the outermost one in an accent colour and cut into dashes: a
broadcast going out as a stream. The logo is the symbol followed by the words
"RTSP Announcer". The ``dark_`` images use colours that read well on a dark
background. Everything is drawn at four times its size and scaled down with
Lanczos filtering, so the edges are smooth; the background is transparent and
the images are trimmed to the drawing, as home-assistant/brands asks.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
BRAND_DIR = ROOT / "custom_components" / "rtsp_announcer" / "brand"
FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

ICON_SIZE = 256  # icon.png; icon@2x.png is twice as large
LOGO_HEIGHT = 128  # logo.png; logo@2x.png is twice as high
SUPERSAMPLE = 4  # drawn at this many times the final size, then scaled down

# The symbol is laid out on a 256 x 256 grid, then trimmed and scaled.
GRID = 256.0
WAVE_CENTRE = (98.0, 128.0)
WAVE_RADII = (44.0, 82.0, 120.0)
WAVE_WIDTH = 17.0
WAVE_HALF_ANGLE = 47.0  # degrees either side of the horizontal
OUTER_DASHES = 3  # the outer wave is cut into this many dashes
DASH_GAP = 9.0  # space between two dashes, between their round ends

# The logo's words: their cap height relative to the logo's height, and the gap
# between the symbol and the words relative to the logo's height.
TEXT_CAP_RATIO = 0.40
TEXT_GAP_RATIO = 0.22

RGBA = tuple[int, int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class Palette:
    """Colours of one variant of the images."""

    speaker: RGBA
    waves: RGBA
    accent: RGBA
    words: RGBA
    words_accent: RGBA


LIGHT = Palette(
    speaker=(0x1E, 0x4F, 0xA3, 0xFF),
    waves=(0x2B, 0x7B, 0xE4, 0xFF),
    accent=(0xF5, 0x8A, 0x07, 0xFF),
    words=(0x1F, 0x29, 0x37, 0xFF),
    words_accent=(0x1E, 0x4F, 0xA3, 0xFF),
)
DARK = Palette(
    speaker=(0x8C, 0xC4, 0xFF, 0xFF),
    waves=(0x5A, 0xA9, 0xFF, 0xFF),
    accent=(0xFF, 0xB3, 0x47, 0xFF),
    words=(0xF3, 0xF4, 0xF6, 0xFF),
    words_accent=(0x8C, 0xC4, 0xFF, 0xFF),
)


def _polar(centre: Point, radius: float, degrees: float) -> Point:
    """Return the point at ``radius`` from ``centre`` in direction ``degrees``."""
    angle = math.radians(degrees)
    return (centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle))


def _disc(draw: ImageDraw.ImageDraw, centre: Point, radius: float, fill: RGBA) -> None:
    """Fill a circle."""
    x, y = centre
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def _rounded_polygon(
    draw: ImageDraw.ImageDraw, points: list[Point], radius: float, fill: RGBA
) -> None:
    """Fill a convex polygon whose corners are rounded by ``radius``.

    The polygon is shrunk by ``radius`` towards its centroid, filled, and its
    outline is drawn with round joints of width ``2 * radius``.
    """
    cx = sum(x for x, _ in points) / len(points)
    cy = sum(y for _, y in points) / len(points)
    inner: list[Point] = []
    for x, y in points:
        dx, dy = x - cx, y - cy
        length = math.hypot(dx, dy)
        shrink = radius * math.sqrt(2) / length
        inner.append((x - dx * shrink, y - dy * shrink))
    draw.polygon(inner, fill=fill)
    draw.line([*inner, inner[0]], fill=fill, width=round(2 * radius), joint="curve")
    for corner in inner:
        _disc(draw, corner, radius, fill)


def _arc(
    draw: ImageDraw.ImageDraw,
    centre: Point,
    radius: float,
    span: tuple[float, float],
    width: float,
    fill: RGBA,
) -> None:
    """Stroke an arc from ``span[0]`` to ``span[1]`` degrees with round ends."""
    x, y = centre
    outer = radius + width / 2
    draw.arc(
        (x - outer, y - outer, x + outer, y + outer),
        start=span[0],
        end=span[1],
        fill=fill,
        width=round(width),
    )
    for degrees in span:
        _disc(draw, _polar(centre, radius, degrees), width / 2, fill)


def draw_symbol(size: int, palette: Palette) -> Image.Image:
    """Draw the symbol at ``size`` pixels per 256 grid units, untrimmed."""
    scale = size / GRID
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    def grid(*points: Point) -> list[Point]:
        return [(x * scale, y * scale) for x, y in points]

    # The magnet box and the cone of the loudspeaker.
    _rounded_polygon(
        draw, grid((14, 98), (50, 98), (50, 158), (14, 158)), 7 * scale, palette.speaker
    )
    _rounded_polygon(
        draw, grid((44, 98), (92, 58), (92, 198), (44, 158)), 6 * scale, palette.speaker
    )

    # The sound waves.
    centre = (WAVE_CENTRE[0] * scale, WAVE_CENTRE[1] * scale)
    *inner_radii, outer_radius = WAVE_RADII
    for radius in inner_radii:
        _arc(
            draw,
            centre,
            radius * scale,
            (-WAVE_HALF_ANGLE, WAVE_HALF_ANGLE),
            WAVE_WIDTH * scale,
            palette.waves,
        )
    # The outer wave is cut into dashes, like packets going out on a stream.
    gap = math.degrees((DASH_GAP + WAVE_WIDTH) / outer_radius)
    dash = (2 * WAVE_HALF_ANGLE - (OUTER_DASHES - 1) * gap) / OUTER_DASHES
    for index in range(OUTER_DASHES):
        start = -WAVE_HALF_ANGLE + index * (dash + gap)
        _arc(
            draw,
            centre,
            outer_radius * scale,
            (start, start + dash),
            WAVE_WIDTH * scale,
            palette.accent,
        )
    return image


def _trim(image: Image.Image) -> Image.Image:
    """Cut the transparent border off ``image``."""
    box = image.getchannel("A").getbbox()
    if box is None:
        msg = "nothing was drawn"
        raise ValueError(msg)
    return image.crop(box)


def icon(size: int, palette: Palette) -> Image.Image:
    """Return the square icon, ``size`` x ``size``, the symbol filling it."""
    symbol = _trim(draw_symbol(size * SUPERSAMPLE, palette))
    side = max(symbol.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(symbol, ((side - symbol.width) // 2, (side - symbol.height) // 2))
    return square.resize((size, size), Image.Resampling.LANCZOS)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Return DejaVu Sans Bold at ``size`` pixels, or Pillow's own font."""
    if FONT_PATH.is_file():
        return ImageFont.truetype(str(FONT_PATH), size)
    return ImageFont.load_default(size=size)


def logo(height: int, palette: Palette) -> Image.Image:
    """Return the logo, ``height`` pixels high: the symbol and the name."""
    big = height * SUPERSAMPLE
    symbol = _trim(draw_symbol(big * 2, palette))
    symbol = symbol.resize(
        (round(symbol.width * big / symbol.height), big), Image.Resampling.LANCZOS
    )

    # Find the font size whose capitals are TEXT_CAP_RATIO of the height.
    probe = 1000
    cap = _font(probe).getbbox("H")
    font_size = round(probe * TEXT_CAP_RATIO * big / (cap[3] - cap[1]))
    font = _font(font_size)
    first, second = "RTSP ", "Announcer"
    cap = font.getbbox("H")
    cap_height = cap[3] - cap[1]

    gap = round(TEXT_GAP_RATIO * big)
    text_width = round(font.getlength(first + second))
    canvas = Image.new("RGBA", (symbol.width + gap + text_width + big, big))
    canvas.paste(symbol, (0, 0))
    draw = ImageDraw.Draw(canvas)
    # Centre the capitals vertically on the symbol.
    top = (big - cap_height) / 2 - cap[1]
    left = symbol.width + gap
    draw.text((left, top), first, font=font, fill=palette.words_accent)
    draw.text(
        (left + font.getlength(first), top), second, font=font, fill=palette.words
    )

    trimmed = _trim(canvas)
    width = round(trimmed.width * height / trimmed.height)
    return trimmed.resize((width, height), Image.Resampling.LANCZOS)


def images() -> dict[str, Image.Image]:
    """Return every brand image by file name."""
    result: dict[str, Image.Image] = {}
    for prefix, palette in (("", LIGHT), ("dark_", DARK)):
        result[f"{prefix}icon.png"] = icon(ICON_SIZE, palette)
        result[f"{prefix}icon@2x.png"] = icon(2 * ICON_SIZE, palette)
        result[f"{prefix}logo.png"] = logo(LOGO_HEIGHT, palette)
        result[f"{prefix}logo@2x.png"] = logo(2 * LOGO_HEIGHT, palette)
    return result


def write_brand(directory: Path) -> list[Path]:
    """Write every brand image into ``directory`` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, image in images().items():
        path = directory / name
        image.save(path, format="PNG", optimize=True)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    """Write the images into the directory given, or the brand folder."""
    if len(argv) > 1:
        print(f"usage: {Path(__file__).name} [OUTDIR]", file=sys.stderr)
        return 2
    directory = Path(argv[0]) if argv else BRAND_DIR
    for path in write_brand(directory):
        with Image.open(path) as image:
            print(f"{path}: {image.width}x{image.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
