"""Shared helpers: threads, logging, learning-rate schedule, the SD1 noise schedule."""
import csv
import json
import math
import os
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
LOG_DIR = os.environ.get("LORAGRAPH_TRAIN_LOGS", os.path.join(HERE, "logs"))
SCALE_FACTOR = 0.18215  # SD1's fixed latent scaling factor (applied by the engine)


def setup_threads(n=2):
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1) if hasattr(torch, "set_num_interop_threads") else None


def lr_at(step, total, peak, warmup, final_ratio=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def alphas_cumprod(n=1000, b0=0.00085, b1=0.012):
    """SD1's scaled-linear schedule: betas = linspace(sqrt(b0), sqrt(b1), n) ** 2 (float64, then float32)."""
    betas = torch.linspace(b0 ** 0.5, b1 ** 0.5, n, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


class CsvLog:
    """Appends rows to tools/train/logs/<name>.csv and prints a line every `every` rows."""

    def __init__(self, name, fields, every=25):
        os.makedirs(LOG_DIR, exist_ok=True)
        self.path = os.path.join(LOG_DIR, f"{name}.csv")
        self.f = open(self.path, "w", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=fields)
        self.w.writeheader()
        self.every = every
        self.n = 0
        self.name = name

    def row(self, **kw):
        self.w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in kw.items()})
        self.n += 1
        if self.n % self.every == 0:
            self.f.flush()
            print(self.name, " ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in kw.items()), flush=True)

    def close(self):
        self.f.close()


def record_phase(name, seconds, **extra):
    """Keeps tools/train/logs/phases.json: wall time and final numbers of each phase."""
    os.makedirs(LOG_DIR, exist_ok=True)
    p = os.path.join(LOG_DIR, "phases.json")
    data = {}
    if os.path.exists(p):
        with open(p) as f:
            data = json.load(f)
    data[name] = {"wall_seconds": round(seconds, 1), **extra}
    with open(p, "w") as f:
        json.dump(data, f, indent=1)


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def __call__(self):
        return time.time() - self.t0
