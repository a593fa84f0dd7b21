"""Load the authors' released checkpoints into the course's models.

Used by the chapters that compare a trained-from-scratch model with the published one (DnCNN
ch3, MSRResNet ch4, KBNet ch5, Restormer ch6, ESRGAN ch7). Our modules are named like the
official code, so most names load unchanged; the few differences are the rename rules below:

- ``restormer`` (swz30/Restormer): the official LayerNorm and resampling wrappers keep their
  weights in a ``.body`` sub-module, and the patch embedding in ``patch_embed.proj``.
- ``kbnet`` (zhangyi-3/KBNet, ``KBNet_s``): the kernel-basis-attention parameters of each block
  live in our ``kba`` sub-module (``w``, ``b``, ``conv1``, ``conv21``, ``conv2``, ``conv211``,
  ``attgamma``, ``ga1``). The model is built with the official zero padding (``padding="zeros"``)
  so that sizes that are not a multiple of ``2**levels`` give the official outputs too.
- ``rrdbnet``: BasicSR's layout (``conv_first``, ``body.0.rdb1.conv1``, ...) is ours; both
  xinntao/ESRGAN layouts of ``RRDB_ESRGAN_x4.pth`` / ``RRDB_PSNR_x4.pth`` are renamed: the
  original one (``model.0``, ``model.1.sub.0.RDB1.conv1.0``, ...) and the 2019 one
  (``RRDB_trunk.0.RDB1.conv1``, ``trunk_conv``, ``upconv1``, ``HRconv``, ...).
- ``msrresnet`` (BasicSR): ``upconv1`` / ``upconv2`` are the stages of our ``upsampler``.
- ``dncnn`` (KAIR ``model.0.weight``, ...): same names, with or without batch norm (KAIR's
  released files have the batch norms folded into the convolutions).

Checkpoints wrapped as ``{"params": ...}`` or ``{"params_ema": ...}`` (BasicSR; the EMA weights
are preferred) and ``module.`` prefixes (DataParallel) are accepted. Without ``model``, the
configuration (channels, depth, blocks, scale...) is read off the tensor shapes. Any name that
does not match is reported in a ``ValueError`` listing the missing and unexpected keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

State = dict[str, torch.Tensor]


# ---------------------------------------------------------------- renaming: official -> ours
def _restormer_names(state: State) -> State:
    out = {}
    for key, value in state.items():
        key = key.replace("patch_embed.proj.", "patch_embed.").replace(".body.", ".")
        out[key] = value
    return out


_KBA_PARAM = re.compile(r"\.(w|b|attgamma|ga1|conv1|conv21|conv2|conv211)(\.|$)")


def _kbnet_names(state: State) -> State:
    return {_KBA_PARAM.sub(r".kba.\1\2", key, count=1): value for key, value in state.items()}


# old ESRGAN ``model.N`` indices of the layers around the RRDB trunk
_ESRGAN_OLD = {"model.0.": "conv_first.", "model.3.": "conv_up1.", "model.6.": "conv_up2.",
               "model.8.": "conv_hr.", "model.10.": "conv_last."}  # fmt: skip
_ESRGAN_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.")
_ESRGAN_TRUNK_END = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")


# xinntao/ESRGAN's 2019 ``RRDBNet_arch.py`` (its re-released RRDB_ESRGAN_x4.pth)
_ESRGAN_2019 = [(r"^RRDB_trunk\.", "body."), (r"\.RDB(\d)\.", r".rdb\1."),
                (r"^trunk_conv\.", "conv_body."), (r"^upconv(\d)\.", r"conv_up\1."),
                (r"^HRconv\.", "conv_hr.")]  # fmt: skip


def _rrdbnet_names(state: State) -> State:
    old_layout = any(key.startswith("model.") for key in state)
    out = {}
    for key, value in state.items():
        if old_layout:
            key = _ESRGAN_RDB.sub(lambda m: f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.", key)
            key = _ESRGAN_TRUNK_END.sub(r"conv_body.\2", key)  # the conv after the last RRDB
            for old, ours in _ESRGAN_OLD.items():
                if key.startswith(old):
                    key = ours + key[len(old) :]
        for pattern, ours in _ESRGAN_2019:  # BasicSR names (ours) match none of these
            key = re.sub(pattern, ours, key)
        out[key] = value
    return out


def _msrresnet_names(state: State) -> State:
    out = {}
    for key, value in state.items():
        key = re.sub(r"^upconv(\d)\.", lambda m: f"upsampler.{int(m[1]) - 1}.conv.", key)
        out[key] = value
    return out


def _identity(state: State) -> State:
    return dict(state)


# ------------------------------------------------------- configuration read off the shapes
def _shape(state: State, key: str) -> torch.Size:
    if key not in state:
        raise ValueError(f"expected a tensor {key!r}; the file has {_preview(state)}")
    return state[key].shape


def _indices(state: State, prefix: str) -> int:
    """How many numbered children ``prefix.<i>.`` the state has."""
    found = {
        int(k[len(prefix) :].split(".")[0])
        for k in state
        if re.match(rf"{re.escape(prefix)}\d+\.", k)
    }
    return len(found)


def _rrdbnet_config(state: State) -> dict[str, Any]:
    feat, cin = _shape(state, "conv_first.weight")[:2]
    cout = _shape(state, "conv_last.weight")[0]
    unshuffle = round((cin / cout) ** 0.5)  # BasicSR folds x1 / x2 inputs by 4 / 2
    return {"in_channels": cin // unshuffle**2, "out_channels": cout, "features": feat,
            "num_blocks": _indices(state, "body."), "upscale": 4 // unshuffle,
            "growth": _shape(state, "body.0.rdb1.conv1.weight")[0]}  # fmt: skip


def _msrresnet_config(state: State) -> dict[str, Any]:
    feat, cin = _shape(state, "conv_first.weight")[:2]
    stages = _indices(state, "upsampler.")
    factor = round((_shape(state, "upsampler.0.conv.weight")[0] / feat) ** 0.5)
    return {"in_channels": cin, "out_channels": _shape(state, "conv_last.weight")[0],
            "features": feat, "num_blocks": _indices(state, "body."),
            "upscale": factor**stages}  # fmt: skip


def _dncnn_config(state: State) -> dict[str, Any]:
    feat, cin = _shape(state, "model.0.weight")[:2]
    convs = [k for k, v in state.items() if k.endswith(".weight") and v.ndim == 4]
    return {"in_channels": cin, "out_channels": cin, "features": feat, "depth": len(convs),
            "batch_norm": any(k.endswith("running_mean") for k in state)}  # fmt: skip


def _restormer_config(state: State) -> dict[str, Any]:
    dim, cin = _shape(state, "patch_embed.weight")[:2]
    levels = ["encoder_level1", "encoder_level2", "encoder_level3", "latent"]
    hidden = _shape(state, "encoder_level1.0.ffn.project_out.weight")[1]
    return {
        "in_channels": cin,
        "out_channels": _shape(state, "output.weight")[0],
        "dim": dim,
        "num_blocks": tuple(_indices(state, f"{level}.") for level in levels),
        "num_refinement_blocks": _indices(state, "refinement."),
        "heads": tuple(_shape(state, f"{level}.0.attn.temperature")[0] for level in levels),
        "ffn_expansion": 2.66 if int(dim * 2.66) == hidden else (hidden + 0.5) / dim,
        "bias": "output.bias" in state,
        "layer_norm_bias": "encoder_level1.0.norm1.bias" in state,
    }


def _kbnet_config(state: State) -> dict[str, Any]:
    width, cin = _shape(state, "intro.weight")[:2]
    levels = _indices(state, "encoders.")
    return {
        "in_channels": cin,
        "out_channels": _shape(state, "ending.weight")[0],
        "width": width,
        "enc_blocks": tuple(_indices(state, f"encoders.{i}.") for i in range(levels)),
        "middle_blocks": _indices(state, "middle_blks."),
        "dec_blocks": tuple(_indices(state, f"decoders.{i}.") for i in range(levels)),
        "ffn_expansion": _shape(state, "encoders.0.0.conv4.weight")[0] // width,
        "lightweight": _shape(state, "encoders.0.0.conv11.1.weight")[-1] == 3,
        "padding": "zeros",  # the official check_image_size pads with zeros
    }


# name -> (rename official keys to ours, read the constructor arguments off our keys)
LAYOUTS: dict[str, tuple[Callable[[State], State], Callable[[State], dict[str, Any]]]] = {
    "restormer": (_restormer_names, _restormer_config),
    "kbnet": (_kbnet_names, _kbnet_config),
    "rrdbnet": (_rrdbnet_names, _rrdbnet_config),
    "msrresnet": (_msrresnet_names, _msrresnet_config),
    "dncnn": (_identity, _dncnn_config),
}


# ------------------------------------------------------------------------------ loading
def _preview(state: Mapping[str, Any], count: int = 8) -> str:
    keys = list(state)
    more = f", ... ({len(keys)} keys)" if len(keys) > count else ""
    return "keys " + ", ".join(keys[:count]) + more if keys else "no tensors"


def _read(path_or_state_dict: str | Path | Mapping[str, Any]) -> State:
    if isinstance(path_or_state_dict, str | Path):
        path = Path(path_or_state_dict)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{path}: not a readable PyTorch checkpoint ({error})") from error
    else:
        obj = path_or_state_dict
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a state dict, got {type(obj).__name__}")
    for wrapper in ("params_ema", "params", "state_dict", "model"):
        if isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    state = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ValueError(f"the checkpoint holds no tensors ({_preview(obj)})")
    return state


def _mismatch_report(
    name: str, missing: list[str], unexpected: list[str], shapes: list[str]
) -> str:
    def listed(title: str, keys: list[str]) -> str:
        head = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
        return f"\n  {title} ({len(keys)}): {head}" if keys else ""

    return (
        f"not an official {name} checkpoint for this model:"
        + listed("missing keys", missing)
        + listed("unexpected keys", unexpected)
        + listed("shape mismatches", shapes)
    )


def load_official(
    name: str,
    path_or_state_dict: str | Path | Mapping[str, Any],
    model: nn.Module | None = None,
) -> nn.Module:
    """Load an official checkpoint of model ``name`` (a file path or a state dict).

    ``model``: load into this model; by default one is built with the configuration read off the
    checkpoint. Returns the model in eval mode. Raises ``ValueError`` (missing / unexpected keys,
    shape mismatches, unreadable file) and ``FileNotFoundError``.
    """
    from restorelab.models import build  # the registry imports this module

    if name not in LAYOUTS:
        raise ValueError(
            f"no official checkpoint layout for {name!r}; supported: {', '.join(LAYOUTS)}"
        )
    rename, read_config = LAYOUTS[name]
    state = rename(_read(path_or_state_dict))
    if model is None:
        try:
            model = build(name, **read_config(state))
        except (ValueError, KeyError, IndexError) as error:
            raise ValueError(f"not an official {name} checkpoint: {error}") from error
    ours = model.state_dict()
    for key in ours:  # files saved before PyTorch 0.4.1 lack the BN step counters
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = ours[key]
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    shapes = [f"{k} {tuple(state[k].shape)} vs ours {tuple(ours[k].shape)}"
              for k in ours if k in state and state[k].shape != ours[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        raise ValueError(_mismatch_report(name, missing, unexpected, shapes))
    model.load_state_dict(state)
    return model.eval()
