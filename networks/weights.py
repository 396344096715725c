"""Reference-release initialisation and checkpoint loading."""

import math
from pathlib import Path
from typing import Any, Mapping, Union

import torch
import torch.nn as nn

__all__ = ["init_reference_weights", "load_reference_weights"]


@torch.no_grad()
def _init_module(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv1d):
        # The release divides by kernel * out_channels here, without the groups (unlike 2D).
        m.weight.normal_(0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.out_channels)))
    elif isinstance(m, (nn.Conv2d, nn.Conv3d)):
        fan_out = math.prod(m.kernel_size) * m.out_channels // m.groups
        m.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def init_reference_weights(model: nn.Module) -> nn.Module:
    """Applies the reference release's initialisation to every submodule, in place.

    Linear: truncated normal (std 0.02), zero bias (this includes Mamba's ``dt_proj``, whose
    bias ends at 0). Conv1d: normal(0, sqrt(2 / (k * out_channels))), bias untouched.
    Conv2d/3d: normal(0, sqrt(2 / fan_out)), zero bias. ``A_log`` and ``D`` keep Mamba's own
    initialisation. It draws from the global torch RNG: seed it first to reproduce a run.
    """
    model.apply(_init_module)
    return model


def _extract_state_dict(checkpoint: Mapping[str, Any], source: str = "checkpoint") -> "dict[str, torch.Tensor]":
    """The state dict inside a loaded checkpoint, with any DataParallel ``module.`` prefix removed.

    Accepts a plain state dict, or a dict holding it under ``model_state_dict`` (the reference
    release's training checkpoints) or ``model`` (MONAI's ``CheckpointSaver``).
    """
    for key in ("model_state_dict", "model"):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    if not checkpoint or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(
            f"{source}: not a state dict, nor a dict holding one under 'model_state_dict' or 'model' "
            f"(top-level keys: {sorted(checkpoint)[:10]})"
        )
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}


def load_reference_weights(
    model: nn.Module, checkpoint: Union[str, Path, Mapping[str, Any]], map_location: str = "cpu"
) -> nn.Module:
    """Loads weights of the reference release (or of this project) into ``model``, strictly.

    Args:
        model: an :class:`~networks.UltraLightVMUNet` of the checkpoint's configuration.
        checkpoint: a file path, or an already loaded checkpoint. Files are read with
            ``torch.load(weights_only=True)``: a checkpoint never executes code.
        map_location: device for the loaded tensors.

    Raises:
        ValueError: the checkpoint holds no state dict, or its keys or shapes do not match the
            model (the message lists the missing, unexpected and mismatched keys).
    """
    source = "checkpoint"
    if isinstance(checkpoint, (str, Path)):
        source = str(checkpoint)
        checkpoint = torch.load(checkpoint, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{source}: expected a dict of tensors, got {type(checkpoint).__name__}")
    state = _extract_state_dict(checkpoint, source)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{source} does not fit {type(model).__name__}:\n"
            f"  missing keys: {missing}\n  unexpected keys: {unexpected}\n  shape mismatches: {mismatched}"
        )
    model.load_state_dict(state)
    return model
