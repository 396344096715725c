"""Reference-release initialisation and checkpoint loading."""

import math
from pathlib import Path
from typing import Any, Mapping, Union

import torch
import torch.nn as nn

__all__ = ["init_reference_weights", "load_reference_weights", "pvm_groups_of"]


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


def _pvm_groups(state: Mapping[str, torch.Tensor]) -> "set[int]":
    """The PVM parallel degrees of a state dict's PVM layers: each layer's LayerNorm width over
    its Mamba's input width."""
    suffix = "mamba.in_proj.weight"
    found = set()
    for key, weight in state.items():
        norm = state.get(key[: -len(suffix)] + "norm.weight") if key.endswith(suffix) else None
        if norm is not None and weight.dim() == 2 and weight.shape[1] and norm.numel() % weight.shape[1] == 0:
            found.add(norm.numel() // weight.shape[1])
    return found


def pvm_groups_of(state: Mapping[str, torch.Tensor]) -> int:
    """The ``pvm_groups`` of the network a state dict was saved from (read from its shapes).

    Raises:
        ValueError: the state dict holds no PVM layer, or layers of different degrees.
    """
    found = _pvm_groups(state)
    if len(found) != 1:
        raise ValueError(f"cannot tell the pvm_groups of this state dict: its PVM layers give {sorted(found)}")
    return found.pop()


def _pvm_groups_hint(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> str:
    """A hint naming ``pvm_groups`` when the checkpoint differs from the model only in its Mamba
    widths, as one of another parallel degree does."""
    theirs, ours = _pvm_groups(state), _pvm_groups(expected)
    if len(theirs) != 1 or len(ours) != 1 or theirs == ours:
        return ""
    (theirs,), (ours,) = theirs, ours
    return (
        f"\n  the checkpoint looks like one of pvm_groups={theirs}, the model has pvm_groups={ours}: "
        f"build the network with pvm_groups={theirs} (bundle: --pvm_groups {theirs})"
    )


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
            model (the message lists the missing, unexpected and mismatched keys, and names the
            checkpoint's ``pvm_groups`` when only the Mamba widths differ).
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
    mismatched_keys = [k for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or mismatched_keys:
        mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}" for k in mismatched_keys]
        only_mamba = not missing and not unexpected and all(".mamba." in k for k in mismatched_keys)
        raise ValueError(
            f"{source} does not fit {type(model).__name__}:"
            + (_pvm_groups_hint(state, expected) if only_mamba else "")
            + f"\n  missing keys: {missing}\n  unexpected keys: {unexpected}\n  shape mismatches: {mismatched}"
        )
    model.load_state_dict(state)
    return model
