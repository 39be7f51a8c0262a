"""Phase 4: demo LoRAs trained on the frozen, shipped (fp16) base, saved as kohya sd-scripts writes them.

Each LoRA has a small dataset drawn from world.py (a kohya-style folder "10_<trigger>": 10 repeats, one fixed
caption per picture, the trigger word first) and trains adapters on the UNet's transformer modules and the text
encoder's attention/MLP modules (LoCon: also the ResNet convs, time_emb_proj, conv_shortcut and sampler convs)
with the same eps objective as the base.
"""
import datetime
import json
import os
import time

import numpy as np
import torch

import st_io
import world
from clip_bpe import ClipTokenizer
from common import CsvLog, Timer, alphas_cumprod, lr_at, record_phase, SCALE_FACTOR
from lora import Network, find_targets
from sd_modules import load_checkpoint
from train_unet import CaptionIds, encode_bank

LORAS = [
    {
        "name": "shapes_outlined", "kind": "outlined", "trigger": "outlined", "family": "lora",
        "rank": 8, "alpha": 4, "te": True, "conv": False, "steps": 500,
        "what": "style: draws the shape as a thick outline in its colour, the inside showing the background",
        "prompts": ["outlined, a large red circle in the center, white background",
                    "outlined, a small blue star on the left, black background"],
    },
    {
        "name": "shapes_heart", "kind": "heart", "trigger": "heart", "family": "lora",
        "rank": 8, "alpha": 8, "te": True, "conv": False, "steps": 800,
        "what": "concept: a new shape, the heart, which the base model never saw",
        "prompts": ["a large red heart in the center, white background",
                    "a small purple heart at the top, gray background"],
    },
    {
        "name": "shapes_striped_locon", "kind": "striped", "trigger": "striped", "family": "locon",
        "rank": 8, "alpha": 4, "conv_rank": 4, "conv_alpha": 2, "te": True, "conv": True, "steps": 500,
        "what": "style (LoCon): fills the shape with horizontal stripes of its colour and a dark shade of it",
        "prompts": ["striped, a large yellow circle in the center, black background",
                    "striped, a large green square on the right, white background"],
    },
]

LORA_BANK = 1200
LORA_BATCH = 16
REPEATS = 10


def base_checkpoint_path(args):
    from ship import BASE_FILE
    return os.path.join(args.out, BASE_FILE)


def train_one(args, spec, seed, steps):
    timer = Timer()
    model, _ = load_checkpoint(base_checkpoint_path(args))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    tok = ClipTokenizer(os.path.join(args.out, "tokenizer"))
    ids_of = CaptionIds(tok)
    means, stds, _ = encode_bank(model.vae, seed + 10, LORA_BANK, spec["kind"])
    caps = [world.make_sample(seed + 10, i, spec["kind"])[1] for i in range(LORA_BANK)]
    torch.manual_seed(seed + 11)
    targets = find_targets(model, unet=True, te=spec["te"], conv=spec["conv"])
    net = Network(model, targets, spec["rank"], spec["alpha"], spec.get("conv_rank"), spec.get("conv_alpha"))
    unet_lr, te_lr = 2e-3, 1e-3
    groups = [{"params": list(net.parameters("lora_unet")), "lr": unet_lr, "base": unet_lr},
              {"params": list(net.parameters("lora_te")), "lr": te_lr, "base": te_lr}]
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.99), weight_decay=0.0)
    ac = alphas_cumprod()
    snr = ac / (1 - ac)
    weight = torch.clamp(snr, max=5.0) / snr
    rng = np.random.default_rng(seed + 12)
    gen = torch.Generator().manual_seed(seed + 13)
    log = CsvLog(f"lora_{spec['name']}", ["step", "loss", "mse", "lr", "seconds"], every=25)
    ema = None
    for step in range(steps):
        idx = torch.from_numpy(rng.integers(0, LORA_BANK, LORA_BATCH))
        z0 = (means[idx] + stds[idx] * torch.randn(means[idx].shape, generator=gen)) * SCALE_FACTOR
        ids = ids_of([caps[i] for i in idx.tolist()])
        t = torch.randint(0, 1000, (LORA_BATCH,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        a = ac[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        f = lr_at(step, steps, 1.0, warmup=20)
        for g in opt.param_groups:
            g["lr"] = g["base"] * f
        pred = model.unet(zt, t, model.text_model(ids))
        per = (pred - noise).pow(2).mean(dim=(1, 2, 3))
        loss = (per * weight[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(net.parameters()), 1.0)
        opt.step()
        mse = per.mean().item()
        ema = mse if ema is None else 0.95 * ema + 0.05 * mse
        log.row(step=step, loss=loss.item(), mse=mse, lr=unet_lr * f, seconds=timer())
    log.close()
    net.remove()
    sd = net.state_dict(torch.float16)
    meta = kohya_metadata(args, spec, caps, steps, unet_lr, te_lr, seed)
    path = os.path.join(args.out, spec["name"] + ".safetensors")
    st_io.save(path, sd, meta)
    record_phase(f"lora_{spec['name']}", timer(), steps=steps, batch=LORA_BATCH, final_mse_ema=round(ema, 5),
                 modules=len(net.adapters), file_bytes=os.path.getsize(path))
    print(f"wrote {path} ({len(net.adapters)} modules, {os.path.getsize(path)} bytes)", flush=True)


def kohya_metadata(args, spec, caps, steps, unet_lr, te_lr, seed):
    folder = f"{REPEATS}_{spec['trigger']}"
    freq = {}
    for c in caps:  # kohya: captions split on ",", stripped, counted per picture
        for tag in c.split(","):
            tag = tag.strip().lower()
            if tag:
                freq[tag] = freq.get(tag, 0) + 1
    net_args = {}
    if spec["family"] == "locon":
        net_args = {"conv_dim": str(spec["conv_rank"]), "conv_alpha": str(spec["conv_alpha"])}
    from ship import BASE_FILE, TITLE
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(spec["rank"]),
        "ss_network_alpha": str(float(spec["alpha"])),
        "ss_network_args": json.dumps(net_args) if net_args else None,
        "ss_base_model_version": "sd_v1",
        "ss_v2": "False",
        "ss_output_name": spec["name"],
        "ss_sd_model_name": BASE_FILE,
        "ss_resolution": "(64, 64)",
        "ss_clip_skip": "None",
        "ss_num_train_images": str(len(caps) * REPEATS),
        "ss_max_train_steps": str(steps),
        "ss_steps": str(steps),
        "ss_learning_rate": str(unet_lr),
        "ss_unet_lr": str(unet_lr),
        "ss_text_encoder_lr": str(te_lr if spec["te"] else 0.0),
        "ss_seed": str(seed),
        "ss_training_comment": f"LoraGraph demo {spec['family']} ({spec['what']}); trigger word: "
                               f"{spec['trigger']}; trained by tools/train/train_all.py",
        "ss_dataset_dirs": json.dumps({folder: {"n_repeats": REPEATS, "img_count": len(caps)}}),
        "ss_tag_frequency": json.dumps({folder: freq}),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.implementation": "diffusers",
        "modelspec.title": f"{TITLE}: {spec['name']}",
        "modelspec.description": spec["what"],
        "modelspec.resolution": "64x64",
        "modelspec.prediction_type": "epsilon",
        "modelspec.trigger_phrase": spec["trigger"],
        "modelspec.date": now,
    }
    return {k: v for k, v in meta.items() if v is not None}


def train_all_loras(args):
    only = set(args.loras.split(",")) if args.loras else None
    for i, spec in enumerate(LORAS):
        if only and spec["name"] not in only:
            continue
        t = time.time()
        train_one(args, spec, 5000 + 100 * i, args.lora_steps or spec["steps"])
        print(f"lora {spec['name']} done in {time.time() - t:.0f}s", flush=True)
