"""A deterministic synthetic world: 64x64 pictures of one coloured shape, with a short caption.

Every picture is a pure function of (seed, index): `make_sample(seed, i, kind)` draws its attributes from
numpy's PCG64 seeded with (seed, i), so any batch can be regenerated on the fly without storing images.

Caption grammar (see README.md):
    caption    := "a " [size " "] colour " " shape [" " position] [", " background " background"]
    size       := "small" | "large"
    colour     := "red" | "green" | "blue" | "yellow" | "purple" | "orange"
    shape      := "circle" | "square" | "triangle" | "star"          (base world)
                | "heart"                                            (held out: only the concept LoRA)
    position   := "on the left" | "on the right" | "at the top" | "at the bottom" | "in the center"
    background := "white" | "black" | "gray"
Omissions: the size is left out of 20% of captions (either size may then be drawn); the position is left out
of half the captions of centred shapes only (so a caption without a position means "in the center"); the
background is left out of half the captions of white pictures only (no background means white).
LoRA datasets put their trigger word first, kohya style: "outlined, a large red circle on the left, white
background" (style "outlined"), "striped, ..." (style "striped"), and the concept LoRA uses the new shape word
"heart" as its trigger.
"""
import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SS = 4  # supersampling factor for anti-aliased edges

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 80, 230),
    "yellow": (240, 210, 30),
    "purple": (140, 50, 190),
    "orange": (250, 135, 20),
}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128)}
SHAPES = ["circle", "square", "triangle", "star"]
HELD_OUT_SHAPES = ["heart"]
SIZES = {"small": 10.0, "large": 19.0}  # "radius" in pixels of the 64x64 picture
POSITIONS = ["left", "right", "top", "bottom", "center"]
POSITION_PHRASES = {"left": "on the left", "right": "on the right", "top": "at the top",
                    "bottom": "at the bottom", "center": "in the center"}
STYLES = ["plain", "outlined", "striped"]  # plain = base world; the others are the style LoRAs' worlds


def _centre(position, r, rng):
    off = SIZE / 2 - r - 3.0  # keep the shape inside the frame
    cx = cy = SIZE / 2
    if position == "left":
        cx -= off
    elif position == "right":
        cx += off
    elif position == "top":
        cy -= off
    elif position == "bottom":
        cy += off
    cx += rng.uniform(-2, 2)
    cy += rng.uniform(-2, 2)
    return cx, cy


def _polygon(shape, cx, cy, r):
    if shape == "square":
        s = r * 0.88
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        # equilateral, pointing up, centred on its centroid
        return [(cx + r * 1.1 * np.cos(a), cy + r * 1.1 * np.sin(a) + r * 0.1)
                for a in (-np.pi / 2, -np.pi / 2 + 2 * np.pi / 3, -np.pi / 2 + 4 * np.pi / 3)]
    if shape == "star":
        pts = []
        for k in range(10):
            a = -np.pi / 2 + k * np.pi / 5
            rr = r * 1.12 if k % 2 == 0 else r * 0.48
            pts.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
        return pts
    if shape == "heart":
        pts = []
        for k in range(64):
            t = 2 * np.pi * k / 64
            x = 16 * np.sin(t) ** 3
            y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
            pts.append((cx + x * r / 16.0, cy - (y + 2.5) * r / 16.0))
        return pts
    raise ValueError(shape)


def render(shape, colour, size, position, background, style="plain", rng=None):
    """Returns a uint8 HxWx3 picture."""
    rng = rng or np.random.default_rng(0)
    r = SIZES[size] * rng.uniform(0.92, 1.08)
    cx, cy = _centre(position, r, rng)
    S = SIZE * SS
    bg = BACKGROUNDS[background]
    fg = COLOURS[colour]
    mask = Image.new("L", (S, S), 0)
    d = ImageDraw.Draw(mask)
    if shape == "circle":
        d.ellipse([(cx - r) * SS, (cy - r) * SS, (cx + r) * SS, (cy + r) * SS], fill=255)
    else:
        d.polygon([(x * SS, y * SS) for x, y in _polygon(shape, cx, cy, r)], fill=255)
    if style == "outlined":
        # keep a band of 3 px inside the edge: the filled shape intersected with a 6 px stroke along the edge
        w = 2 * 3 * SS
        stroke = Image.new("L", (S, S), 0)
        ds = ImageDraw.Draw(stroke)
        if shape == "circle":
            ds.ellipse([(cx - r) * SS - w / 2, (cy - r) * SS - w / 2, (cx + r) * SS + w / 2, (cy + r) * SS + w / 2],
                       outline=255, width=w)
        else:
            pts = [(x * SS, y * SS) for x, y in _polygon(shape, cx, cy, r)]
            ds.line(pts + pts[:2], fill=255, width=w, joint="curve")
        mask = Image.fromarray(np.minimum(np.asarray(mask), np.asarray(stroke)))
    # box-downsample the coverage mask, then composite at 64x64 (stripe edges fall on pixel rows)
    m = np.asarray(mask, dtype=np.float32).reshape(SIZE, SS, SIZE, SS).mean(axis=(1, 3)) / 255.0
    fg_arr = np.array(fg, np.float32)
    if style == "striped":
        band = ((np.arange(SIZE) // 6) % 2 == 1).astype(np.float32)[:, None, None]  # 6 px stripes
        fill = fg_arr * (1 - band) + fg_arr * 0.3 * band
    else:
        fill = fg_arr[None, None]
    img = np.array(bg, np.float32)[None, None] * (1 - m[..., None]) + fill * m[..., None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def caption_for(shape, colour, size, position, background, rng, style="plain", trigger=None):
    parts = ["a"]
    if rng.random() >= 0.2:
        parts.append(size)
    parts += [colour, shape]
    if not (position == "center" and rng.random() < 0.5):
        parts.append(POSITION_PHRASES[position])
    cap = " ".join(parts)
    if not (background == "white" and rng.random() < 0.5):
        cap += f", {background} background"
    if trigger:
        cap = f"{trigger}, {cap}"
    return cap


def make_sample(seed, index, kind="base"):
    """kind: 'base' (plain shapes of the base world), 'vae' (everything the autoencoder must represent:
    all shapes incl. held-out ones and all styles), 'outlined', 'striped', 'heart' (LoRA datasets).
    Returns (uint8 picture HxWx3, caption, attributes dict)."""
    rng = np.random.default_rng([seed, index, {"base": 0, "vae": 1, "outlined": 2, "striped": 3, "heart": 4}[kind]])
    shapes = SHAPES
    style = "plain"
    trigger = None
    if kind == "vae":
        shapes = SHAPES + HELD_OUT_SHAPES
        style = STYLES[rng.integers(len(STYLES))]
    elif kind in ("outlined", "striped"):
        style = kind
        trigger = kind
    elif kind == "heart":
        shapes = HELD_OUT_SHAPES
    shape = shapes[rng.integers(len(shapes))]
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    size = list(SIZES)[rng.integers(len(SIZES))]
    position = POSITIONS[rng.integers(len(POSITIONS))]
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    img = render(shape, colour, size, position, background, style, rng)
    cap = caption_for(shape, colour, size, position, background, rng, style, trigger)
    return img, cap, dict(shape=shape, colour=colour, size=size, position=position, background=background,
                          style=style)


def batch(seed, start, n, kind="base"):
    """float32 tensor-ready batch: (N,3,64,64) in [-1,1], captions list."""
    imgs, caps = [], []
    for i in range(start, start + n):
        img, cap, _ = make_sample(seed, i, kind)
        imgs.append(img)
        caps.append(cap)
    x = np.stack(imgs).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
    return x, caps


def corpus_lines():
    """Every caption the grammar can produce (base world, held-out shape and LoRA triggers), for the tokenizer."""
    lines = []
    for trigger in (None, "outlined", "striped"):
        for shape in SHAPES + HELD_OUT_SHAPES:
            for colour in COLOURS:
                for size in (None,) + tuple(SIZES):
                    for position in [None] + POSITIONS:
                        for background in (None,) + tuple(BACKGROUNDS):
                            cap = "a " + (size + " " if size else "") + f"{colour} {shape}"
                            if position:
                                cap += " " + POSITION_PHRASES[position]
                            if background:
                                cap += f", {background} background"
                            if trigger:
                                cap = f"{trigger}, {cap}"
                            lines.append(cap)
    return lines


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="write a contact sheet of samples, or the caption corpus")
    ap.add_argument("--sheet", help="PNG path for a contact sheet")
    ap.add_argument("--kind", default="vae")
    ap.add_argument("--corpus", help="write every caption of the grammar to this text file")
    a = ap.parse_args()
    if a.corpus:
        with open(a.corpus, "w") as f:
            f.write("\n".join(corpus_lines()) + "\n")
    if a.sheet:
        tiles = [make_sample(0, i, a.kind) for i in range(48)]
        sheet = np.zeros((6 * 64, 8 * 64, 3), np.uint8)
        for i, (img, cap, _) in enumerate(tiles):
            sheet[(i // 8) * 64:(i // 8 + 1) * 64, (i % 8) * 64:(i % 8 + 1) * 64] = img
            print(i, cap)
        Image.fromarray(sheet).resize((8 * 128, 6 * 128), Image.NEAREST).save(a.sheet)
