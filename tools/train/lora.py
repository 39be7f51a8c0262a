"""LoRA / LoCon adapters on our LDM-named SD1 modules, saved under kohya sd-scripts' SD1 names.

kohya trains SD1 on a diffusers-layout UNet, so its names are `lora_unet_<diffusers module path>` and
`lora_te_<transformers module path>` with every "." replaced by "_" (lycoris_math.md §11). Our modules carry
LDM names, so each UNet module path is first mapped to its diffusers path (table of §11.6).

Math (§1): delta W = (alpha / rank) * up @ down (conv: down carries the kernel, stride and padding, up is 1x1);
the adapted layer computes W x + multiplier * delta W x. Adapters are attached as forward hooks, so the base
modules and their state_dict stay untouched.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------------------
# names


RES_RENAMES = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
               "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}


def ldm_to_diffusers_unet(path, num_res_blocks=2, attention_levels=(0, 1, 2), levels=4):
    """'input_blocks.4.1.transformer_blocks.0.attn1.to_q' -> 'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q'.
    Returns None for paths that have no diffusers counterpart."""
    parts = path.split(".")
    L = num_res_blocks

    def res_tail(rest):
        tail = ".".join(rest)
        for k, v in RES_RENAMES.items():
            if tail == k or tail.startswith(k + "."):
                return v + tail[len(k):]
        return None

    if parts[0] == "time_embed":
        return {"0": "time_embedding.linear_1", "2": "time_embedding.linear_2"}[parts[1]]
    if parts[0] == "out":
        return {"0": "conv_norm_out", "2": "conv_out"}[parts[1]]
    if parts[0] == "input_blocks":
        n, s, rest = int(parts[1]), int(parts[2]), parts[3:]
        if n == 0:
            return "conv_in"
        level, j = (n - 1) // (L + 1), (n - 1) % (L + 1)
        if j == L:  # downsampler
            return f"down_blocks.{level}.downsamplers.0.conv" if rest[:1] == ["op"] else None
        if s == 0:
            t = res_tail(rest)
            return f"down_blocks.{level}.resnets.{j}.{t}" if t else None
        return f"down_blocks.{level}.attentions.{j}." + ".".join(rest)
    if parts[0] == "middle_block":
        s, rest = int(parts[1]), parts[2:]
        if s == 1:
            return "mid_block.attentions.0." + ".".join(rest)
        t = res_tail(rest)
        return f"mid_block.resnets.{s // 2}.{t}" if t else None
    if parts[0] == "output_blocks":
        n, s, rest = int(parts[1]), int(parts[2]), parts[3:]
        ui, j = n // (L + 1), n % (L + 1)
        level = levels - 1 - ui  # up_blocks.0 is the lowest resolution
        has_attn = level in attention_levels
        if s == 0:
            t = res_tail(rest)
            return f"up_blocks.{ui}.resnets.{j}.{t}" if t else None
        if s == 1 and has_attn:
            return f"up_blocks.{ui}.attentions.{j}." + ".".join(rest)
        if rest == ["conv"]:
            return f"up_blocks.{ui}.upsamplers.0.conv"
        return None
    return None


def kohya_name(model_path):
    """Full module path inside StableDiffusion -> kohya module name (None when kohya would not name it)."""
    unet_p = "model.diffusion_model."
    te_p = "cond_stage_model.transformer."
    if model_path.startswith(unet_p):
        d = ldm_to_diffusers_unet(model_path[len(unet_p):])
        return None if d is None else "lora_unet_" + d.replace(".", "_")
    if model_path.startswith(te_p):
        return "lora_te_" + model_path[len(te_p):].replace(".", "_")
    return None


ATTN_LEAVES = ("proj_in", "proj_out", "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
               "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2")
TE_LEAVES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")
CONV_LEAVES = ("conv1", "conv2", "time_emb_proj", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv")


def find_targets(model, unet=True, te=True, conv=False):
    """[(model path, module, kohya name)] for kohya's default targets (+ LoCon's ResNet/sampler targets)."""
    out = []
    for path, mod in model.named_modules():
        if not isinstance(mod, (nn.Linear, nn.Conv2d)):
            continue
        name = kohya_name(path)
        if name is None:
            continue
        if path.startswith("model.diffusion_model."):
            if not unet:
                continue
            d = ldm_to_diffusers_unet(path[len("model.diffusion_model."):])
            is_attn = ".attentions." in d and d.endswith(ATTN_LEAVES)
            is_conv = (".resnets." in d and d.split(".")[-1] in ("conv1", "conv2", "time_emb_proj", "conv_shortcut")) \
                or d.endswith(("downsamplers.0.conv", "upsamplers.0.conv"))
            if is_attn or (conv and is_conv):
                out.append((path, mod, name))
        elif te and path.endswith(TE_LEAVES):
            out.append((path, mod, name))
    return out


# ----------------------------------------------------------------------------------------------------------
# adapters


class LoRAAdapter(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.rank, self.alpha = rank, float(alpha)
        self.multiplier = 1.0
        if isinstance(base, nn.Linear):
            self.down = nn.Parameter(torch.empty(rank, base.in_features))
            self.up = nn.Parameter(torch.zeros(base.out_features, rank))
            self.kind = "linear"
        else:
            k = base.kernel_size
            self.down = nn.Parameter(torch.empty(rank, base.in_channels, *k))
            self.up = nn.Parameter(torch.zeros(base.out_channels, rank, 1, 1))
            self.kind = "conv"
            self.stride, self.padding = base.stride, base.padding
        nn.init.kaiming_uniform_(self.down, a=5 ** 0.5)  # kohya: kaiming-uniform down, zero up

    def delta(self, x):
        s = self.alpha / self.rank * self.multiplier
        if self.kind == "linear":
            return F.linear(F.linear(x, self.down), self.up) * s
        h = F.conv2d(x, self.down, stride=self.stride, padding=self.padding)
        return F.conv2d(h, self.up) * s

    def state(self, name, dtype):
        return {f"{name}.lora_down.weight": self.down.detach().to(dtype).contiguous(),
                f"{name}.lora_up.weight": self.up.detach().to(dtype).contiguous(),
                f"{name}.alpha": torch.tensor(self.alpha, dtype=dtype)}


class Network:
    """A set of adapters hooked onto a model."""

    def __init__(self, model, targets, rank, alpha, conv_rank=None, conv_alpha=None):
        self.adapters = {}
        self.handles = []
        for path, mod, name in targets:
            is3x3 = isinstance(mod, nn.Conv2d) and mod.kernel_size != (1, 1)
            r, a = (conv_rank, conv_alpha) if is3x3 else (rank, alpha)
            ad = LoRAAdapter(mod, r, a)
            self.adapters[name] = ad
            self.handles.append(mod.register_forward_hook(self._hook(ad)))

    @staticmethod
    def _hook(ad):
        def fn(module, inputs, output):
            return output + ad.delta(inputs[0])
        return fn

    def parameters(self, prefix=None):
        for name, ad in self.adapters.items():
            if prefix is None or name.startswith(prefix):
                yield from ad.parameters()

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []

    def state_dict(self, dtype=torch.float16):
        sd = {}
        for name, ad in self.adapters.items():
            sd.update(ad.state(name, dtype))
        return sd


# ----------------------------------------------------------------------------------------------------------
# merging a kohya file into our modules (for the Python sanity pictures; the engine has its own loader)


def block_group(model_path):
    p = model_path
    if p.startswith("cond_stage_model."):
        return "te"
    if ".middle_block." in p:
        return "mid"
    if ".output_blocks." in p or ".out." in p:
        return "out"
    return "in"


@torch.no_grad()
def merge_into(model, lora_sd, strength=1.0, groups=None):
    """Adds s * delta W of every module in lora_sd to `model` (in place), s = the module's group strength when
    given, else `strength` (SD.Next's chain: a group value replaces the strength, it does not multiply it).
    groups: dict like {"te": 1, "in": 1, "mid": 1, "out": 0}. Returns the number of modules merged."""
    groups = groups or {}
    by_name = {}
    for path, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            n = kohya_name(path)
            if n:
                by_name[n] = (path, mod)
    names = {k.split(".", 1)[0] for k in lora_sd}
    count = 0
    for n in names:
        if n not in by_name:
            raise KeyError(f"LoRA module {n} matches no module of the model")
        path, mod = by_name[n]
        g = groups.get(block_group(path), strength)
        W = mod.weight
        if f"{n}.lora_down.weight" in lora_sd:
            down = lora_sd[f"{n}.lora_down.weight"].float()
            up = lora_sd[f"{n}.lora_up.weight"].float()
            r = down.shape[0]
            alpha = lora_sd[f"{n}.alpha"].float().item() if f"{n}.alpha" in lora_sd else r
            dw = (up.reshape(up.shape[0], -1) @ down.reshape(r, -1)).reshape(W.shape) * (alpha / r)
        elif f"{n}.hada_w1_a" in lora_sd:
            w1 = lora_sd[f"{n}.hada_w1_a"].float() @ lora_sd[f"{n}.hada_w1_b"].float()
            w2 = lora_sd[f"{n}.hada_w2_a"].float() @ lora_sd[f"{n}.hada_w2_b"].float()
            r = lora_sd[f"{n}.hada_w1_b"].shape[0]
            alpha = lora_sd[f"{n}.alpha"].float().item() if f"{n}.alpha" in lora_sd else r
            dw = (w1 * w2).reshape(W.shape) * (alpha / r)
        else:
            raise KeyError(f"unknown adapter family for {n}")
        W += dw * g
        count += 1
    return count


def parse_lora(spec):
    """`path[:strength][:te=..][:unet=..][:in=..][:mid=..][:out=..]` (the text of a <lora:...> tag) ->
    (path, strength, {group: strength}); `unet=` sets in/mid/out together."""
    parts = spec.split(":")
    path, strength, groups = parts[0], float(parts[1]) if len(parts) > 1 else 1.0, {}
    for p in parts[2:]:
        k, v = p.split("=")
        if k == "unet":
            groups.update({"in": float(v), "mid": float(v), "out": float(v)})
        else:
            groups[k] = float(v)
    return path, strength, groups
