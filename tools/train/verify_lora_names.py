"""Checks lora.py's kohya naming, target selection and merge math against the shared LyCORIS fixtures.

For lora / locon / loha (written by the LyCORIS library for tiny-sd1): the module names lora.py targets equal
the file's (LoRA: transformer + text encoder modules; LoCon: also ResNet convs, time_emb_proj, conv_shortcut and
sampler convs), and merging at the checks.json strengths (including in/mid/out and te/unet groups) reproduces the
expected weights. Exits non-zero on a mismatch; skips when the fixtures are absent.

    /usr/bin/python3 tools/train/verify_lora_names.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from lora import find_targets, merge_into, parse_lora  # noqa: E402
from sd_modules import load_checkpoint  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "fixtures"))


def main():
    ly = os.path.join(FIX, "lycoris-reference")
    ckpt = os.path.join(FIX, "tiny-sd-reference", "tiny-sd1.safetensors")
    if not os.path.exists(ly):
        print("skip: fixtures not found")
        return 0
    ok = True
    base, _ = load_checkpoint(ckpt)
    for fname, conv in (("lora", False), ("locon", True)):
        sd, _ = st_io.load(os.path.join(ly, fname + ".safetensors"))
        file_names = {k.split(".", 1)[0] for k in sd}
        ours = {n for _, _, n in find_targets(base, conv=conv)}
        same = file_names == ours
        ok &= same
        print(f"{fname}: {len(file_names)} modules in file, {len(ours)} targeted by lora.py:",
              "same" if same else f"DIFFERENT (file only {sorted(file_names - ours)[:4]}, ours only "
              f"{sorted(ours - file_names)[:4]})")
    with open(os.path.join(ly, "checks.json")) as f:
        checks = json.load(f)
    for check in checks:
        specs = [parse_lora(s) for s in check["loras"]]
        if not all(s[0].split(".")[0] in ("lora", "lora_noalpha", "locon", "loha", "lora_ldm_names") for s in specs):
            continue
        if any(s[0].startswith("lora_ldm_names") for s in specs):
            continue
        model, _ = load_checkpoint(ckpt)
        for fname, strength, groups in specs:
            sd, _ = st_io.load(os.path.join(ly, fname))
            merge_into(model, sd, strength, groups)
        expect, _ = st_io.load(os.path.join(ly, check["expect"]))
        msd = model.state_dict()
        worst = 0.0
        for k, v in expect.items():
            worst = max(worst, ((msd[k] - v.float()).abs().max() / v.float().abs().max().clamp_min(1e-12)).item())
        good = worst < 1e-5
        ok &= good
        print(f"{check['expect']:32s} {' + '.join(check['loras']):48s} max rel err {worst:.1e}",
              "ok" if good else "FAIL")
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    torch.set_num_threads(2)
    sys.exit(main())
