"""Stable Diffusion 1.x modules whose state_dict keys are the original single-file (LDM) names.

    StableDiffusion
      model.diffusion_model.*                     UNetModel (input_blocks / middle_block / output_blocks)
      first_stage_model.*                         AutoencoderKL (encoder / decoder / quant_conv / post_quant_conv)
      cond_stage_model.transformer.text_model.*   CLIP text transformer (transformers' CLIPTextModel names)

The arithmetic is that of diffusers' UNet2DConditionModel / AutoencoderKL and transformers' CLIPTextModel
(checked by verify_modules.py against outputs computed with those libraries): GroupNorm eps 1e-5 in the UNet
and 1e-6 in the VAE and the spatial transformers' input norm, LayerNorm eps 1e-5, GEGLU feed-forward with exact
GELU, timestep embedding [cos, sin] (flip_sin_to_cos=True, shift 0), nearest 2x upsampling, CLIP with
quick_gelu, causal mask and pre-LayerNorm blocks.
"""
import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------------------
# configs


@dataclass
class UNetConfig:
    model_channels: int = 64
    channel_mult: tuple = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attention_levels: tuple = (0, 1, 2)
    num_heads: int = 8
    context_dim: int = 64
    in_channels: int = 4
    out_channels: int = 4


@dataclass
class VAEConfig:
    ch: int = 32
    ch_mult: tuple = (1, 1, 2, 2)
    num_res_blocks: int = 2
    z_channels: int = 4
    in_channels: int = 3


@dataclass
class CLIPConfig:
    vocab_size: int = 600
    width: int = 64
    layers: int = 3
    heads: int = 4
    intermediate: int = 256
    max_positions: int = 77


@dataclass
class SDConfig:
    unet: UNetConfig = field(default_factory=UNetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    clip: CLIPConfig = field(default_factory=CLIPConfig)

    def to_dict(self):
        return asdict(self)


def gn(channels, eps):
    return nn.GroupNorm(32, channels, eps=eps, affine=True)


# ----------------------------------------------------------------------------------------------------------
# CLIP text encoder (transformers CLIPTextModel semantics)


class CLIPAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x, mask):
        b, n, c = x.shape
        h = self.heads
        d = c // h
        q = self.q_proj(x) * (d ** -0.5)
        k = self.k_proj(x)
        v = self.v_proj(x)
        q, k, v = (t.reshape(b, n, h, d).transpose(1, 2) for t in (q, k, v))
        w = q @ k.transpose(-1, -2) + mask
        w = w.softmax(dim=-1)
        o = (w @ v).transpose(1, 2).reshape(b, n, c)
        return self.out_proj(o)


class CLIPMLP(nn.Module):
    def __init__(self, width, inner):
        super().__init__()
        self.fc1 = nn.Linear(width, inner)
        self.fc2 = nn.Linear(inner, width)

    def forward(self, x):
        x = self.fc1(x)
        x = x * torch.sigmoid(1.702 * x)  # quick_gelu
        return self.fc2(x)


class CLIPEncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = CLIPAttention(cfg.width, cfg.heads)
        self.layer_norm1 = nn.LayerNorm(cfg.width, eps=1e-5)
        self.mlp = CLIPMLP(cfg.width, cfg.intermediate)
        self.layer_norm2 = nn.LayerNorm(cfg.width, eps=1e-5)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        x = x + self.mlp(self.layer_norm2(x))
        return x


class CLIPEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.position_embedding = nn.Embedding(cfg.max_positions, cfg.width)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.token_embedding(ids) + self.position_embedding(pos)[None]


class CLIPEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(cfg) for _ in range(cfg.layers)])


class CLIPTextTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = CLIPEmbeddings(cfg)
        self.encoder = CLIPEncoder(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg.width, eps=1e-5)

    def forward(self, ids, return_hidden=False):
        x = self.embeddings(ids)
        n = ids.shape[1]
        mask = torch.full((n, n), float("-inf"), device=ids.device).triu(1)
        hidden = [x]
        for layer in self.encoder.layers:
            x = layer(x, mask)
            hidden.append(x)
        last = self.final_layer_norm(x)
        if return_hidden:
            pooled = last[torch.arange(last.shape[0]), ids.argmax(dim=-1)]
            return last, hidden, pooled
        return last


class CLIPTextModelWrapper(nn.Module):
    """`transformer.text_model.*` as in SD1 checkpoints' cond_stage_model."""

    def __init__(self, cfg):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.text_model = CLIPTextTransformer(cfg)

    def forward(self, ids):
        return self.transformer.text_model(ids)


# ----------------------------------------------------------------------------------------------------------
# UNet (LDM openaimodel names, diffusers semantics)


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, ch, emb_ch, out_ch):
        super().__init__()
        self.in_layers = nn.Sequential(gn(ch, 1e-5), nn.SiLU(), nn.Conv2d(ch, out_ch, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_ch, out_ch))
        self.out_layers = nn.Sequential(gn(out_ch, 1e-5), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip_connection = nn.Identity() if ch == out_ch else nn.Conv2d(ch, out_ch, 1)

    def forward(self, x, emb, context=None):
        h = self.in_layers(x)
        h = h + self.emb_layers(emb)[:, :, None, None]
        h = self.out_layers(h)
        return self.skip_connection(x) + h


class CrossAttention(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))

    def forward(self, x, context=None):
        ctx = x if context is None else context
        b, n, c = x.shape
        h = self.heads
        d = c // h
        q = self.to_q(x).reshape(b, n, h, d).transpose(1, 2)
        k = self.to_k(ctx).reshape(b, -1, h, d).transpose(1, 2)
        v = self.to_v(ctx).reshape(b, -1, h, d).transpose(1, 2)
        w = (q @ k.transpose(-1, -2)) * (d ** -0.5)
        o = (w.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.to_out(o)


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * 4), nn.Dropout(0.0), nn.Linear(dim * 4, dim))

    def forward(self, x):
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, context_dim, heads):
        super().__init__()
        self.attn1 = CrossAttention(dim, dim, heads)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x, context):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        x = self.ff(self.norm3(x)) + x
        return x


class SpatialTransformer(nn.Module):
    def __init__(self, ch, context_dim, heads):
        super().__init__()
        self.norm = gn(ch, 1e-6)
        self.proj_in = nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(ch, context_dim, heads)])
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x, emb, context):
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x))
        h = h.reshape(b, c, hh * ww).transpose(1, 2)
        for blk in self.transformer_blocks:
            h = blk(h, context)
        h = h.transpose(1, 2).reshape(b, c, hh, ww)
        return self.proj_out(h) + x


class Downsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.op = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x, emb=None, context=None):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, emb=None, context=None):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ConvIn(nn.Conv2d):
    def forward(self, x, emb=None, context=None):
        return super().forward(x)


class TimestepEmbedSequential(nn.ModuleList):
    def forward(self, x, emb, context):
        for layer in self:
            x = layer(x, emb, context)
        return x


class UNetModel(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        mc = cfg.model_channels
        ted = mc * 4
        self.time_embed = nn.Sequential(nn.Linear(mc, ted), nn.SiLU(), nn.Linear(ted, ted))
        heads = cfg.num_heads
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential([ConvIn(cfg.in_channels, mc, 3, padding=1)])])
        chans = [mc]
        ch = mc
        nlev = len(cfg.channel_mult)
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers = [ResBlock(ch, ted, mult * mc)]
                ch = mult * mc
                if level in cfg.attention_levels:
                    layers.append(SpatialTransformer(ch, cfg.context_dim, heads))
                self.input_blocks.append(TimestepEmbedSequential(layers))
                chans.append(ch)
            if level != nlev - 1:
                self.input_blocks.append(TimestepEmbedSequential([Downsample(ch)]))
                chans.append(ch)
        self.middle_block = TimestepEmbedSequential([
            ResBlock(ch, ted, ch), SpatialTransformer(ch, cfg.context_dim, heads), ResBlock(ch, ted, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                ich = chans.pop()
                layers = [ResBlock(ch + ich, ted, mc * mult)]
                ch = mc * mult
                if level in cfg.attention_levels:
                    layers.append(SpatialTransformer(ch, cfg.context_dim, heads))
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                self.output_blocks.append(TimestepEmbedSequential(layers))
        self.out = nn.Sequential(gn(ch, 1e-5), nn.SiLU(), nn.Conv2d(mc, cfg.out_channels, 3, padding=1))

    def forward(self, x, t, context):
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(t, self.cfg.model_channels))
        hs = []
        h = x
        for blk in self.input_blocks:
            h = blk(h, emb, context)
            hs.append(h)
        h = self.middle_block(h, emb, context)
        for blk in self.output_blocks:
            h = torch.cat([h, hs.pop()], dim=1)
            h = blk(h, emb, context)
        return self.out(h)


class DiffusionWrapper(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.diffusion_model = UNetModel(cfg)


# ----------------------------------------------------------------------------------------------------------
# VAE (LDM autoencoder names, diffusers AutoencoderKL semantics)


class VResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = gn(cin, 1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = gn(cout, 1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)
        else:
            self.nin_shortcut = None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class VAttnBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.norm = gn(ch, 1e-6)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(b, c, hh * ww).transpose(1, 2)
        k = self.k(h).reshape(b, c, hh * ww)
        v = self.v(h).reshape(b, c, hh * ww)
        w = ((q @ k) * (c ** -0.5)).softmax(dim=-1)  # [b, query, key]
        o = (v @ w.transpose(1, 2)).reshape(b, c, hh, ww)
        return x + self.proj_out(o)


class VDownsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class VUpsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class VMid(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.block_1 = VResnetBlock(ch, ch)
        self.attn_1 = VAttnBlock(ch)
        self.block_2 = VResnetBlock(ch, ch)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = cfg.ch
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        in_mult = (1,) + tuple(cfg.ch_mult)
        self.down = nn.ModuleList()
        block_in = ch
        for i, mult in enumerate(cfg.ch_mult):
            lvl = nn.Module()
            block_in = ch * in_mult[i]
            block_out = ch * mult
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(VResnetBlock(block_in, block_out))
                block_in = block_out
            lvl.block = nn.ModuleList(blocks)
            if i != len(cfg.ch_mult) - 1:
                lvl.downsample = VDownsample(block_in)
            self.down.append(lvl)
        self.mid = VMid(block_in)
        self.norm_out = gn(block_in, 1e-6)
        self.conv_out = nn.Conv2d(block_in, 2 * cfg.z_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for lvl in self.down:
            for blk in lvl.block:
                h = blk(h)
            if hasattr(lvl, "downsample"):
                h = lvl.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = cfg.ch
        block_in = ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1)
        self.mid = VMid(block_in)
        ups = [None] * len(cfg.ch_mult)
        for i in reversed(range(len(cfg.ch_mult))):
            lvl = nn.Module()
            block_out = ch * cfg.ch_mult[i]
            blocks = []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(VResnetBlock(block_in, block_out))
                block_in = block_out
            lvl.block = nn.ModuleList(blocks)
            if i != 0:
                lvl.upsample = VUpsample(block_in)
            ups[i] = lvl
        self.up = nn.ModuleList(ups)
        self.norm_out = gn(block_in, 1e-6)
        self.conv_out = nn.Conv2d(block_in, cfg.in_channels, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            lvl = self.up[i]
            for blk in lvl.block:
                h = blk(h)
            if hasattr(lvl, "upsample"):
                h = lvl.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * cfg.z_channels, 2 * cfg.z_channels, 1)
        self.post_quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, 1)

    def encode(self, x):
        """x in [-1, 1] -> (mean, logvar) (logvar clamped to [-30, 20] as diffusers does)."""
        m = self.quant_conv(self.encoder(x))
        mean, logvar = m.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


# ----------------------------------------------------------------------------------------------------------
# the whole checkpoint


class StableDiffusion(nn.Module):
    def __init__(self, cfg: SDConfig):
        super().__init__()
        self.cfg = cfg
        self.model = DiffusionWrapper(cfg.unet)
        self.first_stage_model = AutoencoderKL(cfg.vae)
        self.cond_stage_model = CLIPTextModelWrapper(cfg.clip)

    @property
    def unet(self):
        return self.model.diffusion_model

    @property
    def vae(self):
        return self.first_stage_model

    @property
    def text_model(self):
        return self.cond_stage_model.transformer.text_model


def config_from_state_dict(sd):
    """Infers an SDConfig from LDM-named tensor shapes (the same rules the engine uses)."""
    p = "model.diffusion_model."
    mc = sd[p + "input_blocks.0.0.weight"].shape[0]
    mults = []
    n = 1
    while True:
        k = f"{p}input_blocks.{n}.0.in_layers.2.weight"
        if k not in sd:
            break
        mults.append(sd[k].shape[0] // mc)
        n += 3
    attn = tuple(i for i in range(len(mults)) if f"{p}input_blocks.{1 + 3 * i}.1.proj_in.weight" in sd)
    ctx = sd[p + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"].shape[1]
    unet = UNetConfig(model_channels=mc, channel_mult=tuple(mults), attention_levels=attn, context_dim=ctx)
    v = "first_stage_model."
    vch = sd[v + "encoder.conv_in.weight"].shape[0]
    vm = []
    i = 0
    while f"{v}encoder.down.{i}.block.0.conv1.weight" in sd:
        vm.append(sd[f"{v}encoder.down.{i}.block.0.conv1.weight"].shape[0] // vch)
        i += 1
    vae = VAEConfig(ch=vch, ch_mult=tuple(vm))
    c = "cond_stage_model.transformer.text_model."
    vocab, width = sd[c + "embeddings.token_embedding.weight"].shape
    layers = 0
    while f"{c}encoder.layers.{layers}.mlp.fc1.weight" in sd:
        layers += 1
    inter = sd[c + "encoder.layers.0.mlp.fc1.weight"].shape[0]
    clip = CLIPConfig(vocab_size=vocab, width=width, layers=layers, heads=width // min(64, width // 4),
                      intermediate=inter, max_positions=sd[c + "embeddings.position_embedding.weight"].shape[0])
    return SDConfig(unet=unet, vae=vae, clip=clip)


def load_checkpoint(path):
    import st_io
    sd, meta = st_io.load(path)
    sd = {k: v.float() for k, v in sd.items()}
    cfg = config_from_state_dict(sd)
    model = StableDiffusion(cfg)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"checkpoint mismatch: missing {missing[:5]} unexpected {unexpected[:5]}")
    return model, meta
