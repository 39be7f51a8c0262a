"""Minimal safetensors reader/writer (the `safetensors` Python package is not installed here).

Format: 8-byte little-endian header length, a JSON header mapping tensor names to
{dtype, shape, data_offsets} plus an optional "__metadata__" dict of strings, then the raw bytes.
"""
import json
import struct

import numpy as np
import torch

_NP = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
}
_TORCH_TO_ST = {torch.float32: "F32", torch.float16: "F16", torch.float64: "F64", torch.int64: "I64",
                torch.int32: "I32", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16"}


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def load(path):
    """Returns (dict name -> torch tensor (fp16/bf16 upcast to fp32 is NOT done), metadata dict)."""
    header, start = read_header(path)
    meta = header.pop("__metadata__", None) or {}
    with open(path, "rb") as f:
        raw = f.read()
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        if info["dtype"] == "BF16":
            u16 = np.frombuffer(raw, dtype=np.uint16, count=(b - a) // 2, offset=start + a)
            arr = (u16.astype(np.uint32) << 16).view(np.float32)
        else:
            dt = _NP[info["dtype"]]
            arr = np.frombuffer(raw, dtype=dt, count=(b - a) // np.dtype(dt).itemsize, offset=start + a)
        out[name] = torch.from_numpy(arr.copy().reshape(info["shape"]))
    return out, meta


def save(path, tensors, metadata=None):
    """tensors: dict name -> torch tensor. Written in sorted name order, 8-byte aligned header."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": _TORCH_TO_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for blob in blobs:
            f.write(blob)
