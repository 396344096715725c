"""The Parallel Vision Mamba (PVM) layer of UltraLight VM-UNet."""

import torch
import torch.nn as nn

from .mamba import Mamba

__all__ = ["PVMLayer"]


class PVMLayer(nn.Module):
    """Layer-normalised tokens split into 4 channel groups, each group through the SAME Mamba
    block (width ``input_dim / 4``) with a learnt-scale residual, re-joined, normalised again by
    the same LayerNorm and projected to ``output_dim``.

    Sharing one Mamba over the four groups is what cuts the parameters; here the four groups
    run as one batch of ``4 * batch`` sequences, which is the same math in a quarter of the calls.

    Args:
        input_dim: input channels, a multiple of 4.
        output_dim: output channels.
        d_state, d_conv, expand: of the shared :class:`Mamba` block.
        scan_backend: see :data:`networks.scan.SCAN_BACKENDS`.

    Shape:
        (batch, input_dim, *spatial) -> (batch, output_dim, *spatial); the spatial positions are
        read as tokens in row-major order, for any number of spatial axes.

    Example:
        >>> PVMLayer(24, 32)(torch.randn(2, 24, 16, 16)).shape
        torch.Size([2, 32, 16, 16])
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        if input_dim % 4:
            raise ValueError(f"PVMLayer input_dim must be a multiple of 4 (4 channel groups), got {input_dim}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.norm = nn.LayerNorm(input_dim)
        self.mamba = Mamba(input_dim // 4, d_state=d_state, d_conv=d_conv, expand=expand, scan_backend=scan_backend)
        self.proj = nn.Linear(input_dim, output_dim)
        self.skip_scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        spatial = list(x.shape[2:])
        tokens = self.norm(x.flatten(2).transpose(1, 2))  # (batch, L, C)
        length = tokens.shape[1]
        group = self.input_dim // 4
        # (batch, L, 4 * g) -> (4 * batch, L, g): the groups become sequences of one batch.
        groups = tokens.reshape(batch, length, 4, group).permute(2, 0, 1, 3).reshape(4 * batch, length, group)
        groups = self.mamba(groups) + self.skip_scale * groups
        tokens = groups.reshape(4, batch, length, group).permute(1, 2, 0, 3).reshape(batch, length, self.input_dim)
        out = self.proj(self.norm(tokens))
        return out.transpose(1, 2).reshape([batch, self.output_dim] + spatial)
