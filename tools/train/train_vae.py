"""Phase 1: the autoencoder (factor 8, 4 latent channels).

Loss: L1 + MSE reconstruction of a posterior sample, plus a small KL term. Afterwards the latent space is
normalised by an exact reparametrisation of quant_conv / post_quant_conv (per latent channel: subtract the
mean, divide by the standard deviation, times 1/0.18215), so that the engine's fixed SD1 scaling factor gives
the UNet latents of zero mean and unit standard deviation, while encode→decode computes the same function.
"""
import torch

import world
from common import CsvLog, Timer, lr_at, record_phase, SCALE_FACTOR
from sd_modules import AutoencoderKL


def kl_term(mean, logvar):
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def reconstruction_losses(y, x):
    """Foreground-weighted L1 and plain MSE of a reconstruction: pixels that differ from the picture's corner
    (its background) count 5x in the L1, so the small coloured shape is not drowned by the background."""
    fg = ((x - x[:, :, :1, :1]).abs().sum(dim=1, keepdim=True) > 0.1).float()
    l1 = ((y - x).abs() * (1.0 + 4.0 * fg)).mean() / (1.0 + 4.0 * fg.mean())
    return l1, (y - x).pow(2).mean()


def train_vae(cfg, steps, batch, seed, lr=1e-3, kl_weight=1e-4, log_name="vae"):
    torch.manual_seed(seed)
    vae = AutoencoderKL(cfg)
    with torch.no_grad():
        # residual branches start as identities (zero last conv of each ResnetBlock and attention output)
        for name, mod in vae.named_modules():
            if name.endswith("conv2") or name.endswith("proj_out"):
                mod.weight.zero_()
                mod.bias.zero_()
        # start with a small posterior std so the decoder sees the signal from step 0
        z = cfg.z_channels
        vae.quant_conv.weight[z:] *= 0.1
        vae.quant_conv.bias[z:] = -8.0
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    log = CsvLog(log_name, ["step", "loss", "l1", "mse", "kl", "lr", "seconds"], every=25)
    timer = Timer()
    gen = torch.Generator().manual_seed(seed + 1)
    ema_l1 = None
    for step in range(steps):
        x, _ = world.batch(seed, step * batch, batch, kind="vae")
        x = torch.from_numpy(x)
        cur = lr_at(step, steps, lr, warmup=50, final_ratio=0.2)
        for g in opt.param_groups:
            g["lr"] = cur
        mean, logvar = vae.encode(x)
        z = mean + torch.randn(mean.shape, generator=gen) * (0.5 * logvar).exp()
        y = vae.decode(z)
        l1, mse = reconstruction_losses(y, x)
        kl = kl_term(mean, logvar)
        loss = l1 + mse + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        ema_l1 = l1.item() if ema_l1 is None else 0.98 * ema_l1 + 0.02 * l1.item()
        log.row(step=step, loss=loss.item(), l1=l1.item(), mse=mse.item(), kl=kl.item(), lr=cur, seconds=timer())
    log.close()
    vae.eval()
    stats = normalise_latents(vae, seed)
    record_phase("vae", timer(), steps=steps, batch=batch, final_l1_ema=round(ema_l1, 5), **stats)
    return vae


@torch.no_grad()
def normalise_latents(vae, seed, n=1024):
    """Exact reparametrisation so that SCALE_FACTOR * latent_mean has zero mean, unit std per channel."""
    means, logvars = [], []
    for start in range(0, n, 64):
        x, _ = world.batch(seed + 7, start, 64, kind="vae")
        m, lv = vae.encode(torch.from_numpy(x))
        means.append(m)
        logvars.append(lv)
    m = torch.cat(means)
    lv = torch.cat(logvars)
    mu = m.mean(dim=(0, 2, 3))
    sd = m.std(dim=(0, 2, 3))
    post_sd_before = (0.5 * lv).exp().mean().item()
    c = (1.0 / SCALE_FACTOR) / sd  # per-channel gain: new = c * (old - mu)
    z = vae.quant_conv.weight.shape[0] // 2
    qw = vae.quant_conv.weight  # [2z, 2z, 1, 1]
    qb = vae.quant_conv.bias
    # mean channels: new_mean = c * (W x + b - mu)
    qw[:z] *= c[:, None, None, None]
    qb[:z] = c * (qb[:z] - mu)
    # logvar channels: new_logvar = logvar + 2 ln c
    qb[z:] += 2.0 * torch.log(c)
    # post_quant_conv(old) = W old + b = W (new / c + mu) + b
    pw = vae.post_quant_conv.weight  # [z, z, 1, 1] (out, in)
    pb = vae.post_quant_conv.bias
    pb += (pw[:, :, 0, 0] * mu[None, :]).sum(dim=1)
    pw /= c[None, :, None, None]
    # check
    x, _ = world.batch(seed + 7, 0, 64, kind="vae")
    m2, lv2 = vae.encode(torch.from_numpy(x))
    s = (m2 * SCALE_FACTOR)
    return {
        "latent_channel_mean_before": [round(v, 4) for v in mu.tolist()],
        "latent_channel_std_before": [round(v, 4) for v in sd.tolist()],
        "posterior_std_mean_before": round(post_sd_before, 5),
        "scaled_latent_mean_after": round(s.mean().item(), 4),
        "scaled_latent_std_after": round(s.std().item(), 4),
        "scaled_posterior_std_after": round(((0.5 * lv2).exp() * SCALE_FACTOR).mean().item(), 5),
    }


def finetune_decoder(vae, steps, batch, seed, lr=3e-4, max_sigma=0.3, log_name="vae_decoder"):
    """Phase 1b: the decoder alone learns to map slightly noisy latents to the clean picture.

    The encoder, quant_conv and so the latent space the UNet is trained on stay fixed; only post_quant_conv and
    the decoder change. Latent noise has std sigma ~ U(0, max_sigma) in units of the scaled latent (0.18215 z,
    std 1), so imprecise latents from a small diffusion model decode to clean shapes instead of smudges."""
    torch.manual_seed(seed)
    for p in vae.parameters():
        p.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    log = CsvLog(log_name, ["step", "loss", "l1", "mse", "sigma", "lr", "seconds"], every=25)
    timer = Timer()
    gen = torch.Generator().manual_seed(seed + 1)
    ema_l1 = None
    for step in range(steps):
        x, _ = world.batch(seed, step * batch, batch, kind="vae")
        x = torch.from_numpy(x)
        cur = lr_at(step, steps, lr, warmup=20, final_ratio=0.2)
        for g in opt.param_groups:
            g["lr"] = cur
        with torch.no_grad():
            mean, logvar = vae.encode(x)
            z = mean + torch.randn(mean.shape, generator=gen) * (0.5 * logvar).exp()
            sigma = torch.rand((batch, 1, 1, 1), generator=gen) * max_sigma
            z = z + torch.randn(z.shape, generator=gen) * sigma / SCALE_FACTOR
        y = vae.decode(z)
        l1, mse = reconstruction_losses(y, x)
        loss = l1 + mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_l1 = l1.item() if ema_l1 is None else 0.98 * ema_l1 + 0.02 * l1.item()
        log.row(step=step, loss=loss.item(), l1=l1.item(), mse=mse.item(), sigma=sigma.mean().item(), lr=cur,
                seconds=timer())
    log.close()
    vae.eval()
    record_phase("vae_decoder", timer(), steps=steps, batch=batch, max_sigma=max_sigma,
                 final_l1_ema=round(ema_l1, 5))
    return vae
