"""A tiny DDIM sampler for looking at the trained model from Python (the product samples in TypeScript).

    /usr/bin/python3 tools/train/sample.py --ckpt assets/demo/<model>.safetensors --out /tmp/grid.png \\
        --prompt "a large red circle on the left, white background" --prompt "a blue star" \\
        [--lora assets/demo/<lora>.safetensors:1.0[:in=0][:out=1]] [--lora-steps 0:10] [--seeds 4]

Each row is one prompt, each column one seed. --lora-steps A:B applies the LoRA(s) only at sampling steps
A..B-1 (a step schedule). Latents are drawn with torch.manual_seed(seed); randn([1, 4, 8, 8]).
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from clip_bpe import ClipTokenizer  # noqa: E402
from common import SCALE_FACTOR, alphas_cumprod  # noqa: E402
from lora import merge_into, parse_lora  # noqa: E402
from sd_modules import load_checkpoint  # noqa: E402


@torch.no_grad()
def ddim(unet_for_step, text_model, tok, prompt, seed, steps=20, cfg=6.0, negative=""):
    ac = alphas_cumprod()
    ts = np.linspace(999, 0, steps).round().astype(int)
    ids = torch.tensor([tok.encode(prompt), tok.encode(negative)])
    ctx = text_model(ids)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((1, 4, 8, 8), generator=g)
    for i, t in enumerate(ts):
        unet = unet_for_step(i)
        e = unet(torch.cat([x, x]), torch.tensor([t, t]), ctx)
        eps = e[1:] + cfg * (e[:1] - e[1:])
        a = ac[t]
        a_prev = ac[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


@torch.no_grad()
def to_image(vae, latent):
    y = vae.decode(latent / SCALE_FACTOR)[0].clamp(-1, 1)
    return ((y.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


class Renderer:
    def __init__(self, ckpt, tokenizer):
        self.base, _ = load_checkpoint(ckpt)
        self.base.eval()
        self.tok = ClipTokenizer(tokenizer)

    def with_loras(self, loras):
        if not loras:
            return self.base
        m = copy.deepcopy(self.base)
        for spec in loras:
            path, s, groups = parse_lora(spec)
            sd, _ = st_io.load(path)
            merge_into(m, sd, s, groups)
        return m

    def render(self, prompt, seed, loras=(), lora_steps=None, steps=20, cfg=6.0):
        m = self.with_loras(loras)
        if lora_steps is None:
            pick = lambda i: m.unet  # noqa: E731
        else:
            a, b = lora_steps
            pick = lambda i: m.unet if a <= i < b else self.base.unet  # noqa: E731
        # the text encoder is the LoRA'd one whenever any LoRA is given (te strength applies at every step)
        lat = ddim(pick, m.text_model, self.tok, prompt, seed, steps, cfg)
        return to_image(self.base.vae, lat)


def grid(rows, scale=2):
    h = len(rows)
    w = max(len(r) for r in rows)
    out = np.full((h * 64, w * 64, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, img in enumerate(r):
            out[i * 64:(i + 1) * 64, j * 64:(j + 1) * 64] = img
    return Image.fromarray(out).resize((w * 64 * scale, h * 64 * scale), Image.NEAREST)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokenizer", default=os.path.join(here, "..", "..", "assets", "demo", "tokenizer"))
    ap.add_argument("--prompt", action="append", required=True)
    ap.add_argument("--lora", action="append", default=[])
    ap.add_argument("--lora-steps", default=None)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=6.0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(2)
    r = Renderer(a.ckpt, a.tokenizer)
    ls = tuple(int(v) for v in a.lora_steps.split(":")) if a.lora_steps else None
    rows = [[r.render(p, s, a.lora, ls, a.steps, a.cfg) for s in range(a.seeds)] for p in a.prompt]
    grid(rows).save(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
