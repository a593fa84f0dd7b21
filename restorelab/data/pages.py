"""Synthetic magazine pages and their simulated scans: (scan, clean) pairs for chapter 9.

Taught in chapter 9 (the descanning competition). Real pairs (DESCAN-18K, the 2023 course set)
are large downloads; these pages are made procedurally, at any size, in tens of milliseconds:
a header (a colour band, a headline or a photo with the title on it), one to three columns of
justified text in pseudo-words, sub-headings, drop caps, pull quotes, tinted sidebars, photos
cut from the photos shipped with scikit-image (astronaut, coffee, chelsea, rocket,
hubble_deep_field, immunohistochemistry) with captions, rules, and a footer.
:class:`SyntheticScans` pairs each page with its scan from
:func:`restorelab.degrade.scan_damage`; the back page that bleeds through is another synthetic
page. Everything is deterministic per (seed, index).

Text uses the DejaVu fonts that matplotlib ships (PIL's default font otherwise). Pages are
uint8 (H, W, 3) arrays from :func:`render_page`, float tensors (3, H, W) in [0, 1] from the
dataset.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import Dataset

from restorelab.degrade.params import make_generator
from restorelab.degrade.scan import ScanConfig, scan_damage
from restorelab.io import to_tensor

PAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
)
ACCENTS = (
    (200, 30, 45), (20, 60, 130), (0, 120, 120), (230, 110, 20),
    (170, 20, 110), (40, 120, 50), (90, 40, 140), (20, 20, 20),
)  # fmt: skip
PAPERS = ((255, 255, 255), (252, 250, 244), (250, 251, 255))
SYLLABLES = (
    "ta re mon li ca ver so ni pla dor en ti mu gra fe lo sen qua bi ex or al es in un ra "
    "de con vi pro tor ma the ing ter ly ment tion an is st ar ou le per com ber sta"
).split()
SHORT_WORDS = ("a", "of", "to", "in", "and", "the", "is", "on", "for", "as", "by", "at")
FONT_FILES = {
    "serif": "DejaVuSerif.ttf",
    "serif-italic": "DejaVuSerif-Italic.ttf",
    "serif-bold": "DejaVuSerif-Bold.ttf",
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
}


@lru_cache(maxsize=256)
def _font(style: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    size = max(5, int(size))
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONT_FILES[style]
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


@lru_cache(maxsize=len(PAGE_PHOTOS))
def _photo(name: str) -> Image.Image:
    from restorelab.data.embedded import load_photo

    array = load_photo(name)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(array[..., :3]))


class _Page:
    """One page being drawn; all randomness comes from ``rng``."""

    def __init__(self, size: tuple[int, int], rng: np.random.Generator) -> None:
        self.h, self.w = size
        self.rng = rng
        paper = PAPERS[rng.integers(len(PAPERS))]
        self.image = Image.new("RGB", (self.w, self.h), paper)
        self.draw = ImageDraw.Draw(self.image)
        self.accent = ACCENTS[rng.integers(len(ACCENTS))]
        self.ink = (int(rng.integers(10, 40)),) * 3
        self.body = int(np.clip(round(self.h / rng.uniform(58, 80)), 5, 40))
        self.serif = bool(rng.random() < 0.7)
        self.justify = bool(rng.random() < 0.75)

    # text -------------------------------------------------------------------------------
    def word(self) -> str:
        rng = self.rng
        if rng.random() < 0.3:
            return SHORT_WORDS[rng.integers(len(SHORT_WORDS))]
        word = "".join(SYLLABLES[i] for i in rng.integers(len(SYLLABLES), size=rng.integers(1, 4)))
        if rng.random() < 0.08:
            word = word.capitalize()
        if rng.random() < 0.1:
            word += "." if rng.random() < 0.6 else ","
        return word

    def line_words(self, font, width: float) -> list[str]:
        words, used, space = [], 0.0, font.getlength(" ")
        while True:
            word = self.word()
            length = font.getlength(word)
            if words and used + space + length > width:
                return words
            if not words and length > width:
                return [word[: max(1, int(len(word) * width / length))]]
            words.append(word)
            used += length + (space if len(words) > 1 else 0)

    def text_line(self, x: float, y: float, width: float, font, colour, last: bool) -> None:
        words = self.line_words(font, width)
        if not self.justify or last or len(words) < 2:
            self.draw.text((x, y), " ".join(words), font=font, fill=colour)
            return
        lengths = [font.getlength(word) for word in words]
        gap = (width - sum(lengths)) / (len(words) - 1)
        for word, length in zip(words, lengths, strict=True):
            self.draw.text((x, y), word, font=font, fill=colour)
            x += length + gap

    def paragraph(self, x, y, width, bottom, font, colour, lines: int, drop_cap: bool) -> float:
        leading = round(font.size * 1.35)
        indent = 0.0 if drop_cap else font.size * 1.2
        cap_lines = 0
        if drop_cap and bottom - y > 3 * leading:
            cap_font = _font("serif-bold", leading * 2.6)
            letter = "ABCDEFGHIJKLMNOPRSTW"[self.rng.integers(20)]
            self.draw.text((x, y - leading * 0.15), letter, font=cap_font, fill=self.accent)
            indent, cap_lines = cap_font.getlength(letter) + font.size * 0.4, 3
        for k in range(lines):
            if y + leading > bottom:
                break
            shift = indent if (k < cap_lines or (k == 0 and not cap_lines)) else 0.0
            self.text_line(x + shift, y, width - shift, font, colour, last=k == lines - 1)
            y += leading
        return y + leading * 0.35

    # pictures ---------------------------------------------------------------------------
    def photo(self, box: tuple[int, int, int, int]) -> None:
        left, top, right, bottom = box
        bw, bh = right - left, bottom - top
        if bw < 4 or bh < 4:
            return
        source = _photo(PAGE_PHOTOS[self.rng.integers(len(PAGE_PHOTOS))])
        sw, sh = source.size
        scale = self.rng.uniform(0.55, 1.0) * min(sw / bw, sh / bh)
        cw, ch = max(1, int(bw * scale)), max(1, int(bh * scale))
        cx, cy = int(self.rng.integers(sw - cw + 1)), int(self.rng.integers(sh - ch + 1))
        crop = source.crop((cx, cy, cx + cw, cy + ch)).resize((bw, bh), Image.Resampling.BILINEAR)
        self.image.paste(crop, (left, top))

    def heading(self, x, y, width, size, colour, style="sans-bold", words=(2, 5)) -> float:
        font = _font(style, size)
        text = " ".join(self.word() for _ in range(self.rng.integers(*words))).capitalize()
        while font.getlength(text) > width and " " in text:
            text = text.rsplit(" ", 1)[0]
        self.draw.text((x, y), text, font=font, fill=colour)
        return y + font.size * 1.3


def _header(page: _Page, margin_x: int, margin_y: int) -> int:
    """Draw the page header; return the y where the body starts."""
    rng, w, h = page.rng, page.w, page.h
    kind = rng.choice(["band", "headline", "photo"], p=[0.35, 0.4, 0.25])
    title_size = page.body * rng.uniform(2.4, 3.6)
    inner = w - 2 * margin_x
    if kind == "band":
        bottom = int(margin_y + title_size * 2.2)
        page.draw.rectangle((0, 0, w, bottom), fill=page.accent)
        page.heading(margin_x, margin_y * 0.8, inner, title_size, (255, 255, 255))
        page.heading(
            margin_x,
            bottom - page.body * 1.9,
            inner,
            page.body * 1.1,
            (255, 255, 255),
            "sans",
            (4, 9),
        )
        return bottom + margin_y // 2
    if kind == "photo":
        bottom = int(h * rng.uniform(0.22, 0.34))
        page.photo((0, 0, w, bottom))
        page.heading(margin_x, bottom - title_size * 1.6, inner, title_size, (255, 255, 255))
        return bottom + margin_y // 2
    small = _font("sans-bold", page.body * 0.9)
    page.draw.text((margin_x, margin_y), page.word().upper(), font=small, fill=page.accent)
    y = page.heading(
        margin_x, margin_y + page.body * 1.5, inner, title_size, page.ink, "serif-bold"
    )
    y = page.heading(margin_x, y, inner, page.body * 1.4, (90, 90, 90), "serif-italic", (6, 12))
    page.draw.line(
        (margin_x, y + 2, w - margin_x, y + 2), fill=page.accent, width=max(1, page.body // 6)
    )
    return int(y + page.body)


def _column(page: _Page, x: int, top: int, width: int, bottom: int, first: bool) -> None:
    """Fill one column with text blocks, sub-headings, photos, sidebars and pull quotes."""
    rng = page.rng
    body = _font("serif" if page.serif else "sans", page.body)
    y = float(top)
    drop = first and rng.random() < 0.6
    while bottom - y > page.body * 2:
        roll = rng.random()
        room = bottom - y
        if roll < 0.14 and room > width * 0.6:
            ph = int(min(room - page.body * 3, width * rng.uniform(0.55, 0.95)))
            if ph > page.body * 3:
                page.photo((x, int(y), x + width, int(y) + ph))
                y += ph + page.body * 0.4
                caption = _font("serif-italic", page.body * 0.85)
                y = page.paragraph(x, y, width, bottom, caption, (90, 90, 90), 2, False)
                continue
        if roll < 0.22:
            y = page.heading(
                x, y + page.body * 0.3, width, page.body * 1.35, page.accent, words=(2, 4)
            )
            continue
        if roll < 0.28 and room > page.body * 8:
            box_h = int(min(room, page.body * rng.uniform(7, 14)))
            tint = tuple(int(255 - (255 - c) * 0.18) for c in page.accent)
            page.draw.rectangle((x, int(y), x + width, int(y) + box_h), fill=tint)
            pad = max(2, page.body // 2)
            inner_y = page.heading(x + pad, y + pad, width - 2 * pad, page.body * 1.1, page.accent)
            lines = int((box_h - (inner_y - y) - pad) // round(page.body * 1.35))
            page.paragraph(
                x + pad, inner_y, width - 2 * pad, y + box_h - pad, body, page.ink, lines, False
            )
            y += box_h + page.body * 0.8
            continue
        if roll < 0.32 and room > page.body * 6:
            quote = _font("serif-italic", page.body * 1.5)
            rule = max(1, page.body // 8)
            page.draw.line((x, y, x + width, y), fill=page.accent, width=rule)
            y = page.paragraph(x, y + page.body * 0.5, width, bottom, quote, page.accent, 2, False)
            page.draw.line((x, y, x + width, y), fill=page.accent, width=rule)
            y += page.body * 0.6
            continue
        lines = int(rng.integers(4, 12))
        y = page.paragraph(x, y, width, bottom, body, page.ink, lines, drop)
        drop = False


def render_page(size: int | tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A clean synthetic magazine page, uint8 (H, W, 3); ``size`` is H or (H, W)."""
    h, w = (size, size) if isinstance(size, int) else size
    if h < 16 or w < 16:
        raise ValueError(f"pages must be at least 16x16 pixels, got {h}x{w}")
    page = _Page((h, w), rng)
    margin_x, margin_y = int(w * rng.uniform(0.05, 0.08)), int(h * rng.uniform(0.04, 0.06))
    top = _header(page, margin_x, margin_y)
    footer = h - margin_y - page.body
    small = _font("sans", page.body * 0.8)
    page.draw.line((margin_x, footer, w - margin_x, footer), fill=(150, 150, 150), width=1)
    page.draw.text((margin_x, footer + 2), str(rng.integers(2, 200)), font=small, fill=page.ink)
    label = " ".join(page.word() for _ in range(2)).upper()
    page.draw.text(
        (w - margin_x - small.getlength(label), footer + 2), label, font=small, fill=page.ink
    )
    columns = int(rng.choice([1, 2, 2, 3, 3])) if w >= 320 else int(rng.choice([1, 2]))
    gutter = int(w * 0.03)
    width = (w - 2 * margin_x - (columns - 1) * gutter) // columns
    bottom = footer - page.body
    if columns > 1 and rng.random() < 0.35:  # a photo across the first two columns
        span = 2 * width + gutter
        ph = int(span * rng.uniform(0.4, 0.6))
        if top + ph < bottom - page.body * 6:
            page.photo((margin_x, top, margin_x + span, top + ph))
            top += ph + page.body
    rules = rng.random() < 0.4
    for k in range(columns):
        x = margin_x + k * (width + gutter)
        _column(page, x, top, width, bottom, first=k == 0)
        if rules and k:
            page.draw.line(
                (x - gutter // 2, top, x - gutter // 2, bottom), fill=(170, 170, 170), width=1
            )
    return np.asarray(page.image)


class SyntheticScans(Dataset):
    """``length`` pairs ``(scan, clean)`` of synthetic pages, float32 (3, H, W) in [0, 1].

    ``size``: H or (H, W). Item i is a function of (seed, i) only: the page layout comes from
    ``numpy.random.default_rng([seed, i, 0])``, its back page (for bleed-through, drawn at half
    size and enlarged: it is blurred anyway) from ``[seed, i, 1]``, the scan from
    ``make_generator(seed, i)`` through :func:`restorelab.degrade.scan_damage` with ``config``.
    """

    def __init__(
        self,
        length: int,
        size: int | tuple[int, int] = 512,
        seed: int = 0,
        config: ScanConfig | None = None,
    ) -> None:
        self.length = length
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.seed, self.config = seed, config or ScanConfig()

    def __len__(self) -> int:
        return self.length

    def clean(self, index: int) -> torch.Tensor:
        """The clean page of item ``index``, (3, H, W) in [0, 1]."""
        return to_tensor(render_page(self.size, np.random.default_rng([self.seed, index, 0])))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pages")
        clean = self.clean(index)
        h, w = self.size
        half = (max(16, h // 2), max(16, w // 2))
        back = to_tensor(render_page(half, np.random.default_rng([self.seed, index, 1])))
        back = F.interpolate(back[None], size=(h, w), mode="bilinear", align_corners=False)
        generator = make_generator(self.seed, index)
        scan = scan_damage(clean[None], generator, self.config, back=back.clamp(0, 1))[0]
        return scan, clean
