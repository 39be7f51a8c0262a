"""Writes the shipped files: the fp16 single-file checkpoint and manifest.json."""
import datetime
import json
import os

import torch

import st_io
from sd_modules import CLIPConfig, SDConfig, StableDiffusion

BASE_FILE = "loragraph-shapes-sd1.safetensors"
TITLE = "LoraGraph Shapes (tiny SD1 demo)"
COMMAND = "nice -n 10 /usr/bin/python3 tools/train/train_all.py --out assets/demo"

BASE_PROMPTS = [
    "a large red circle in the center, white background",
    "a small blue square on the left, black background",
    "a large yellow star at the top, gray background",
    "a green triangle on the right",
    "a red circle",
]


def ship_base(args):
    from train_all import UNET_CFG, VAE_CFG
    work = torch.load(os.path.join(args.work, "unet_te_ft.pt"))  # after the offset-noise continuation
    clip_cfg = CLIPConfig(**work["clip_cfg"])
    cfg = SDConfig(unet=UNET_CFG, vae=VAE_CFG, clip=clip_cfg)
    model = StableDiffusion(cfg)
    model.unet.load_state_dict(work["unet"])
    model.text_model.load_state_dict(work["te"])
    # the autoencoder with its decoder fine-tuned on noisy latents (phase vae_decoder; same encoder as vae.pt)
    model.vae.load_state_dict(torch.load(os.path.join(args.work, "vae_decoder.pt")))
    sd = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items()}
    for k, v in sd.items():
        if not torch.isfinite(v).all():
            raise SystemExit(f"{k} does not fit in fp16")
    phases = {}
    pj = os.path.join(os.path.dirname(os.path.abspath(__file__)), "logs", "phases.json")
    if os.path.exists(pj):
        with open(pj) as f:
            phases = json.load(f)
    meta = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-v1",
        "modelspec.implementation": "diffusers",
        "modelspec.title": TITLE,
        "modelspec.description": "A tiny Stable Diffusion 1.x-structured model trained from scratch on a synthetic "
                                 "world of coloured shapes (64x64 pictures); see tools/train/README.md.",
        "modelspec.resolution": "64x64",
        "modelspec.prediction_type": "epsilon",
        "modelspec.license": "MIT",
        "modelspec.date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "loragraph.training_command": COMMAND,
        "loragraph.config": json.dumps(cfg.to_dict()),
        "loragraph.unet_steps": str(work["step"]),
        "loragraph.training_phases": json.dumps(phases),
        "loragraph.scale_factor": "0.18215",
    }
    path = os.path.join(args.out, BASE_FILE)
    st_io.save(path, sd, meta)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(sd)} tensors)", flush=True)


def write_manifest(args):
    from train_all import CLIP_LAYERS, CLIP_WIDTH, UNET_CFG, VAE_CFG
    from train_lora import LORAS
    import world
    files = {}
    for name in [BASE_FILE] + [s["name"] + ".safetensors" for s in LORAS]:
        p = os.path.join(args.out, name)
        files[name] = os.path.getsize(p) if os.path.exists(p) else None
    manifest = {
        "about": "Demo model and LoRAs trained by tools/train/train_all.py (see tools/train/README.md).",
        "training_command": COMMAND,
        "model": {
            "file": BASE_FILE,
            "bytes": files[BASE_FILE],
            "title": TITLE,
            "architecture": "stable-diffusion-v1",
            "resolution": 64,
            "tokenizer": "tokenizer",
            "unet": {"model_channels": UNET_CFG.model_channels, "channel_mult": list(UNET_CFG.channel_mult),
                     "heads": UNET_CFG.num_heads, "context_dim": UNET_CFG.context_dim},
            "vae": {"ch": VAE_CFG.ch, "ch_mult": list(VAE_CFG.ch_mult), "latent_channels": VAE_CFG.z_channels},
            "text_encoder": {"width": CLIP_WIDTH, "layers": CLIP_LAYERS,
                             "heads": CLIP_WIDTH // min(64, CLIP_WIDTH // 4)},
            "suggested": {"steps": 20, "cfg": 6.0, "sampler": "ddim", "scheduler": "normal", "width": 64,
                          "height": 64, "negative": ""},
            "suggested_prompts": BASE_PROMPTS,
            "vocabulary": {"shapes": world.SHAPES, "colours": list(world.COLOURS), "sizes": list(world.SIZES),
                           "positions": list(world.POSITION_PHRASES.values()),
                           "backgrounds": list(world.BACKGROUNDS)},
            "grammar": "a [small|large] <colour> <shape> [on the left|on the right|at the top|at the bottom|in "
                       "the center][, <white|black|gray> background]; no position means the center, no background "
                       "means white",
        },
        "loras": [
            {
                "file": s["name"] + ".safetensors",
                "bytes": files[s["name"] + ".safetensors"],
                "name": s["name"],
                "family": s["family"],
                "rank": s["rank"],
                "alpha": s["alpha"],
                **({"conv_rank": s["conv_rank"], "conv_alpha": s["conv_alpha"]} if "conv_rank" in s else {}),
                "targets": "UNet transformer blocks (proj_in/out, attn1/attn2 q/k/v/out, ff) and text encoder "
                           "(q/k/v/out_proj, fc1/fc2)" + ("; also ResNet conv1/conv2/time_emb_proj/conv_shortcut "
                                                           "and down/up-sampler convs" if s["conv"] else ""),
                "trigger": s["trigger"],
                "what": s["what"],
                "suggested_strength": 1.0,
                "suggested_prompts": s["prompts"],
            }
            for s in LORAS
        ],
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print("wrote manifest.json", flush=True)
