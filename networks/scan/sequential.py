"""The selective scan as it reads: one step per token, the reference every backend is tested
against (and the speed benchmark's slow baseline)."""

from typing import List

import torch

__all__ = ["selective_scan_sequential", "upcast"]


def upcast(tensors: List[torch.Tensor]) -> List[torch.Tensor]:
    """At least float32, the precision every backend scans in (half inputs are upcast, float64
    ones stay float64 for checks). Tensors already in that dtype pass as they are, so that a
    traced or exported graph holds no conversions that do nothing."""
    dtype = torch.promote_types(tensors[0].dtype, torch.float32)
    return [t if t.dtype == dtype else t.to(dtype) for t in tensors]


def selective_scan_sequential(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """Selective scan, one token at a time (reference implementation).

    Args:
        u: input, shape (batch, length, channels).
        delta: positive step sizes (already through softplus), shape (batch, length, channels).
        A: state matrix (negative), shape (channels, states).
        B: input projection, shape (batch, length, states).
        C: output projection, shape (batch, length, states).
        D: skip weight, shape (channels,).

    Returns:
        y, shape (batch, length, channels), in the dtype of ``u``.
    """
    u_c, delta, A, B, C, D = upcast([u, delta, A, B, C, D])
    batch, length, channels = u_c.shape
    h = u_c.new_zeros(batch, channels, A.shape[1])
    ys: List[torch.Tensor] = []
    for t in range(length):
        decay = torch.exp(delta[:, t, :, None] * A)
        h = decay * h + (delta[:, t] * u_c[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=1) + u_c * D
    return y.to(u.dtype)
