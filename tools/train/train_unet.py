"""Phase 2: UNet + CLIP text encoder, trained jointly from scratch with the eps (noise-prediction) objective.

Latents: the frozen, normalised VAE encodes a bank of base-world pictures once (mean and log-variance); every
use draws a fresh posterior sample, scaled by 0.18215 (as SD1 does), and a fresh caption variant of the same
picture (captions omit attributes at random, see world.py). 10% of captions are dropped to "" (classifier-free
guidance). Timesteps are uniform in 0..999 over SD1's scaled-linear schedule; the loss is the min-SNR-5
weighted MSE between predicted and true noise. An exponential moving average of the weights is what ships.
"""
import copy
import os

import numpy as np
import torch

import world
from clip_bpe import ClipTokenizer
from common import CsvLog, Timer, alphas_cumprod, lr_at, record_phase, SCALE_FACTOR
from sd_modules import AutoencoderKL, CLIPConfig, CLIPTextTransformer, UNetModel

BANK_SIZE = 8000


def zero_init_unet(unet):
    """LDM's initialisation: the last conv of each ResBlock, each proj_out and the output conv start at zero."""
    for name, mod in unet.named_modules():
        if name.endswith("out_layers.3") or name.endswith("proj_out") or name == "out.2":
            torch.nn.init.zeros_(mod.weight)
            torch.nn.init.zeros_(mod.bias)


def init_clip(te):
    for name, p in te.named_parameters():
        if "token_embedding" in name:
            torch.nn.init.normal_(p, std=0.02)
        elif "position_embedding" in name:
            torch.nn.init.normal_(p, std=0.01)


@torch.no_grad()
def encode_bank(vae, seed, n, kind, batch=128):
    """Returns (means [n,4,8,8], stds [n,4,8,8], attribute dicts) of pictures make_sample(seed, i, kind)."""
    means, stds, attrs = [], [], []
    for start in range(0, n, batch):
        imgs = []
        for i in range(start, min(n, start + batch)):
            img, _, a = world.make_sample(seed, i, kind)
            imgs.append(img)
            attrs.append(a)
        x = torch.from_numpy(np.stack(imgs).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0)
        m, lv = vae.encode(x)
        means.append(m)
        stds.append((0.5 * lv).exp())
    return torch.cat(means), torch.cat(stds), attrs


class CaptionIds:
    """Caption -> 77 token ids, cached."""

    def __init__(self, tok):
        self.tok = tok
        self.cache = {}

    def __call__(self, caps):
        out = []
        for c in caps:
            if c not in self.cache:
                self.cache[c] = self.tok.encode(c)
            out.append(self.cache[c])
        return torch.tensor(out, dtype=torch.long)


def caption_variant(attrs, rng, trigger=None):
    return world.caption_for(attrs["shape"], attrs["colour"], attrs["size"], attrs["position"],
                             attrs["background"], rng, attrs.get("style", "plain"), trigger)


def load_vae(args, vae_cfg):
    vae = AutoencoderKL(vae_cfg)
    vae.load_state_dict(torch.load(os.path.join(args.work, "vae.pt")))
    vae.eval()
    for p in vae.parameters():
        p.requires_grad_(False)
    return vae


def fit_eps(unet, te, bank, ids_of, rng, gen, *, steps, batch, lr, warmup, cfg_drop, ema_decay, ema_warmup,
            log_name, timer, offset=0.0, checkpoint=None):
    """The eps-objective loop both UNet phases share; returns the EMA copies and the final EMA of the MSE.

    `offset` > 0 adds offset noise (a per-sample, per-channel constant); `ema_warmup` ramps the EMA decay in
    from 0.1 for a model trained from scratch; `checkpoint(step, ema_unet, ema_te)` runs every 500 steps."""
    means, stds, attrs = bank
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    ema_unet = copy.deepcopy(unet).eval()
    ema_te = copy.deepcopy(te).eval()
    ac = alphas_cumprod()
    snr = ac / (1 - ac)
    weight = torch.clamp(snr, max=5.0) / snr  # min-SNR-5 for the eps objective
    log = CsvLog(log_name, ["step", "loss", "mse", "lr", "seconds"], every=25)
    ema_mse = None
    for step in range(steps):
        idx = torch.from_numpy(rng.integers(0, BANK_SIZE, batch))
        z0 = (means[idx] + stds[idx] * torch.randn(means[idx].shape, generator=gen)) * SCALE_FACTOR
        caps = ["" if rng.random() < cfg_drop else caption_variant(attrs[i], rng) for i in idx.tolist()]
        ids = ids_of(caps)
        t = torch.randint(0, 1000, (batch,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        if offset:
            noise = noise + offset * torch.randn((batch, z0.shape[1], 1, 1), generator=gen)
        a = ac[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        cur = lr_at(step, steps, lr, warmup=warmup)
        for g in opt.param_groups:
            g["lr"] = cur
        pred = unet(zt, t, te(ids))
        per = (pred - noise).pow(2).mean(dim=(1, 2, 3))
        loss = (per * weight[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        d = min(ema_decay, (1 + step) / (10 + step)) if ema_warmup else ema_decay
        with torch.no_grad():
            for m, e in ((unet, ema_unet), (te, ema_te)):
                for p, q in zip(m.parameters(), e.parameters()):
                    q.mul_(d).add_(p.detach(), alpha=1 - d)
        mse = per.mean().item()
        ema_mse = mse if ema_mse is None else 0.98 * ema_mse + 0.02 * mse
        log.row(step=step, loss=loss.item(), mse=mse, lr=cur, seconds=timer())
        if checkpoint and ((step + 1) % 500 == 0 or step + 1 == steps):
            checkpoint(step + 1, ema_unet, ema_te)
    log.close()
    return ema_unet, ema_te, ema_mse


def train_unet(args, cfg, seed, batch=32, lr=1e-3, ema_decay=0.998, cfg_drop=0.1):
    from train_all import CLIP_WIDTH, CLIP_LAYERS
    steps = args.unet_steps
    tok = ClipTokenizer(os.path.join(args.out, "tokenizer"))
    clip_cfg = CLIPConfig(vocab_size=len(tok), width=CLIP_WIDTH, layers=CLIP_LAYERS,
                          heads=CLIP_WIDTH // min(64, CLIP_WIDTH // 4), intermediate=4 * CLIP_WIDTH)
    vae = load_vae(args, cfg.vae)
    timer = Timer()
    bank = encode_bank(vae, seed + 100, BANK_SIZE, "base")
    print(f"encoded {BANK_SIZE} pictures in {timer():.0f}s", flush=True)
    torch.manual_seed(seed + 2)
    unet = UNetModel(cfg.unet)
    zero_init_unet(unet)
    te = CLIPTextTransformer(clip_cfg)
    init_clip(te)

    def checkpoint(step, ema_unet, ema_te):
        torch.save({"unet": ema_unet.state_dict(), "te": ema_te.state_dict(), "clip_cfg": clip_cfg.__dict__,
                    "step": step, "raw_unet": unet.state_dict(), "raw_te": te.state_dict()},
                   os.path.join(args.work, "unet_te.pt"))

    rng = np.random.default_rng(seed + 3)
    gen = torch.Generator().manual_seed(seed + 4)
    _, _, ema_mse = fit_eps(unet, te, bank, CaptionIds(tok), rng, gen, steps=steps, batch=batch, lr=lr, warmup=100,
                            cfg_drop=cfg_drop, ema_decay=ema_decay, ema_warmup=True, log_name="unet", timer=timer,
                            checkpoint=checkpoint)
    record_phase("unet", timer(), steps=steps, batch=batch, bank=BANK_SIZE, final_mse_ema=round(ema_mse, 5))


def finetune_unet_offset(args, cfg, seed, steps, batch=32, lr=4e-4, offset=0.3, ema_decay=0.995,
                         src="unet_te.pt", dst="unet_te_ft.pt"):
    """Phase 2b: a short continuation with "offset noise" (noise + offset * a per-sample, per-channel constant).

    With 8x8 latents the mean of the initial noise is large next to the picture's signal at t=999, and the model
    trained with plain noise let it decide the background (the seed, not the caption, chose white/gray/black).
    Training on noise whose mean varies more teaches the model to treat the mean of x_t as noise and take the
    background from the text. The sampler and schedule stay SD1's; only the training noise changes."""
    w = torch.load(os.path.join(args.work, src))
    clip_cfg = CLIPConfig(**w["clip_cfg"])
    tok = ClipTokenizer(os.path.join(args.out, "tokenizer"))
    vae = load_vae(args, cfg.vae)
    timer = Timer()
    bank = encode_bank(vae, seed + 100, BANK_SIZE, "base")
    unet = UNetModel(cfg.unet)
    te = CLIPTextTransformer(clip_cfg)
    unet.load_state_dict(w["unet"])
    te.load_state_dict(w["te"])
    rng = np.random.default_rng(seed + 33)
    gen = torch.Generator().manual_seed(seed + 34)
    ema_unet, ema_te, ema_mse = fit_eps(unet, te, bank, CaptionIds(tok), rng, gen, steps=steps, batch=batch, lr=lr,
                                        warmup=20, cfg_drop=0.1, ema_decay=ema_decay, ema_warmup=False,
                                        log_name="unet_offset", timer=timer, offset=offset)
    torch.save({"unet": ema_unet.state_dict(), "te": ema_te.state_dict(), "clip_cfg": clip_cfg.__dict__,
                "step": w["step"] + steps}, os.path.join(args.work, dst))
    record_phase("unet_offset", timer(), steps=steps, batch=batch, offset=offset, final_mse_ema=round(ema_mse, 5))
