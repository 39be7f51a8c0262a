"""Checks that sd_modules.py computes what diffusers/transformers compute.

Loads ../shared/fixtures/tiny-sd-reference/tiny-sd1.safetensors (LDM single-file names, all widths 32) into
our modules and compares with tiny-sd1.reference.safetensors (outputs of diffusers' / transformers' own
modules). Exits non-zero when any output differs by more than 1e-4 relative to the output's scale.

    /usr/bin/python3 tools/train/verify_modules.py [--fixtures DIR]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from sd_modules import load_checkpoint  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "tiny-sd-reference"))


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=DEFAULT)
    args = ap.parse_args()
    ckpt = os.path.join(args.fixtures, "tiny-sd1.safetensors")
    refp = os.path.join(args.fixtures, "tiny-sd1.reference.safetensors")
    if not os.path.exists(ckpt):
        print(f"skip: fixtures not found at {args.fixtures}")
        return 0
    torch.set_num_threads(min(2, torch.get_num_threads() or 1))
    model, _ = load_checkpoint(ckpt)
    model.eval()
    ref, _ = st_io.load(refp)
    results = {}
    with torch.no_grad():
        tm = model.text_model
        last, hidden, pooled = tm(ref["clip.input_ids"].long(), return_hidden=True)
        results["clip.last_hidden_state"] = (last, ref["clip.last_hidden_state"])
        results["clip.penultimate_hidden_state"] = (hidden[-2], ref["clip.penultimate_hidden_state"])
        results["clip.penultimate_final_ln"] = (tm.final_layer_norm(hidden[-2]), ref["clip.penultimate_final_ln"])
        results["clip.pooled"] = (pooled, ref["clip.pooled"])
        out = model.unet(ref["unet.sample"], ref["unet.timestep"], ref["unet.encoder_hidden_states"])
        results["unet.out"] = (out, ref["unet.out"])
        results["vae.decoded"] = (model.vae.decode(ref["vae.latent"]), ref["vae.decoded"])
        mean, logvar = model.vae.encode(ref["vae.image"])
        results["vae.encoded_mean"] = (mean, ref["vae.encoded_mean"])
        results["vae.encoded_logvar"] = (logvar, ref["vae.encoded_logvar"])
    worst = 0.0
    for name, (a, b) in results.items():
        e = rel_err(a, b)
        worst = max(worst, e)
        print(f"{name:32s} shape {list(a.shape)!s:18s} max rel err {e:.2e}")
    ok = worst < 1e-4
    print("OK" if ok else "FAIL", f"(worst {worst:.2e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
