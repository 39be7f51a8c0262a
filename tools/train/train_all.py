"""Trains the LoraGraph demo model and its demo LoRAs, and writes them to --out (assets/demo).

    nice -n 10 /usr/bin/python3 tools/train/train_all.py --out assets/demo > /tmp/train.log 2>&1 &

Phases (each reads the previous phase's result from --work, so `--phases` can resume):
  verify  sd_modules.py reproduces diffusers on the shared tiny-sd fixture (skipped when absent)
  corpus  writes the caption corpus; builds the tokenizer with tools/make-tokenizer.ts
  vae     trains the autoencoder, then normalises its latent space exactly (quant_conv / post_quant_conv)
  vae_decoder  fine-tunes the decoder alone on slightly noisy latents (the latent space stays the same)
  unet    trains UNet + CLIP text encoder jointly (eps objective, SD1 scaled-linear schedule)
  unet_offset  continues it with offset noise so that the caption, not the seed, decides the background
  ship    writes the fp16 single-file checkpoint
  loras   trains the demo LoRAs on the frozen base and writes them with kohya names and metadata
  manifest writes manifest.json
Seeds are fixed; logs go to tools/train/logs/.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# One thread: on 2 shared cores, OpenMP/OpenBLAS with 2 threads spin at barriers whenever another process holds a
# core (measured here: a UNet step took 13.2 s with 2 threads vs 1.7 s with 1 under load). Set before torch loads.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))

import torch  # noqa: E402

import common  # noqa: E402
import world  # noqa: E402
from sd_modules import SDConfig, UNetConfig, VAEConfig, CLIPConfig  # noqa: E402

PHASES = ["verify", "corpus", "vae", "unet", "unet_offset", "vae_decoder", "ship", "loras", "manifest"]

# the sizes chosen (see README.md)
VAE_CFG = VAEConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=2, z_channels=4)
UNET_CFG = UNetConfig(model_channels=32, channel_mult=(1, 2, 2, 2), num_res_blocks=2, attention_levels=(0, 1, 2),
                      num_heads=8, context_dim=64)
CLIP_WIDTH, CLIP_LAYERS = 64, 3
VOCAB_SIZE = 1024  # an upper bound: the tool stops when every corpus word is one token (610)

SEED = 1234
VAE_STEPS, VAE_BATCH = 1600, 8
VAE_DECODER_STEPS = 800
UNET_OFFSET_STEPS = 800
UNET_STEPS, UNET_BATCH = 4000, 32


def phase_verify(args):
    r = subprocess.run([sys.executable, os.path.join(HERE, "verify_modules.py")])
    if r.returncode != 0:
        raise SystemExit("verify_modules.py failed: the modules do not match diffusers")


def tokenizer_dir(args):
    return os.path.join(args.out, "tokenizer")


def phase_corpus(args):
    os.makedirs(args.work, exist_ok=True)
    corpus = os.path.join(args.work, "captions.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(world.corpus_lines()) + "\n")
    tok = tokenizer_dir(args)
    cmd = ["npx", "tsx", "tools/make-tokenizer.ts", "--corpus", corpus, "--vocab-size", str(VOCAB_SIZE),
           "--out", tok]
    print("running", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit("tools/make-tokenizer.ts failed")


def phase_vae(args):
    from train_vae import train_vae
    t = time.time()
    vae = train_vae(VAE_CFG, args.vae_steps, VAE_BATCH, SEED)
    torch.save(vae.state_dict(), os.path.join(args.work, "vae.pt"))
    print(f"vae done in {time.time() - t:.0f}s", flush=True)


def phase_vae_decoder(args):
    # needs only vae.pt; independent of the unet phase (the encoder, hence the latent space, does not change)
    from train_vae import finetune_decoder
    from sd_modules import AutoencoderKL
    vae = AutoencoderKL(VAE_CFG)
    vae.load_state_dict(torch.load(os.path.join(args.work, "vae.pt")))
    vae = finetune_decoder(vae, args.vae_decoder_steps, VAE_BATCH, SEED + 50)
    torch.save(vae.state_dict(), os.path.join(args.work, "vae_decoder.pt"))


def phase_unet(args):
    from train_unet import train_unet
    train_unet(args, SDConfig(unet=UNET_CFG, vae=VAE_CFG, clip=None), SEED, batch=UNET_BATCH)


def phase_unet_offset(args):
    from train_unet import finetune_unet_offset
    finetune_unet_offset(args, SDConfig(unet=UNET_CFG, vae=VAE_CFG, clip=None), SEED, args.unet_offset_steps,
                         batch=UNET_BATCH)


def phase_ship(args):
    from ship import ship_base
    ship_base(args)


def phase_loras(args):
    from train_lora import train_all_loras
    train_all_loras(args)


def phase_manifest(args):
    from ship import write_manifest
    write_manifest(args)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "assets", "demo"))
    ap.add_argument("--work", default=os.path.join(HERE, ".work"))
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--vae-steps", type=int, default=VAE_STEPS)
    ap.add_argument("--vae-decoder-steps", type=int, default=VAE_DECODER_STEPS)
    ap.add_argument("--unet-steps", type=int, default=UNET_STEPS)
    ap.add_argument("--unet-offset-steps", type=int, default=UNET_OFFSET_STEPS)
    ap.add_argument("--lora-steps", type=int, default=None, help="override every LoRA's step count")
    ap.add_argument("--loras", default=None, help="comma-separated LoRA names to train (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    args.out = os.path.abspath(args.out)
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    common.setup_threads(args.threads)
    t0 = time.time()
    for ph in args.phases.split(","):
        print(f"=== phase {ph}", flush=True)
        t = time.time()
        globals()[f"phase_{ph}"](args)
        print(f"=== phase {ph} done in {time.time() - t:.0f}s", flush=True)
    print(f"all done in {time.time() - t0:.0f}s", flush=True)
    with open(os.path.join(args.work, "done.json"), "w") as f:
        json.dump({"phases": args.phases, "seconds": time.time() - t0}, f)


if __name__ == "__main__":
    main()
