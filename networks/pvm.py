"""The Parallel Vision Mamba (PVM) layer of UltraLight VM-UNet."""

import torch
import torch.nn as nn

from .mamba import Mamba

__all__ = ["PVMLayer"]


class PVMLayer(nn.Module):
    """Layer-normalised tokens split into ``groups`` channel groups, each group through the SAME
    Mamba block (width ``input_dim / groups``) with a learnt-scale residual, re-joined, normalised
    again by the same LayerNorm and projected to ``output_dim``.

    Sharing one Mamba over the groups is what cuts the parameters: the block's projections grow
    with the square of its width, so more groups mean a narrower, smaller Mamba that reads more
    sequences (the paper's "parallel degree": 4 in the published network, 1, 2 and 4 in its
    ablation). The groups run as one batch of ``groups * batch`` sequences, the same math as one
    call per group.

    Args:
        input_dim: input channels, a multiple of ``groups``.
        output_dim: output channels.
        d_state, d_conv, expand: of the shared :class:`Mamba` block.
        scan_backend: see :data:`networks.scan.SCAN_BACKENDS`.
        groups: the parallel degree: how many channel groups share the Mamba block.

    Shape:
        (batch, input_dim, *spatial) -> (batch, output_dim, *spatial); the spatial positions are
        read as tokens in row-major order, for any number of spatial axes.

    Example:
        >>> PVMLayer(24, 32)(torch.randn(2, 24, 16, 16)).shape
        torch.Size([2, 32, 16, 16])
        >>> PVMLayer(24, 32, groups=2).mamba.d_model
        12
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        scan_backend: str = "auto",
        groups: int = 4,
    ) -> None:
        super().__init__()
        if groups < 1 or input_dim % groups:
            raise ValueError(
                f"PVMLayer groups must be a positive divisor of input_dim, got groups={groups}, input_dim={input_dim}"
            )
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.groups = groups
        self.norm = nn.LayerNorm(input_dim)
        self.mamba = Mamba(input_dim // groups, d_state=d_state, d_conv=d_conv, expand=expand, scan_backend=scan_backend)
        self.proj = nn.Linear(input_dim, output_dim)
        self.skip_scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        spatial = list(x.shape[2:])
        tokens = self.norm(x.flatten(2).transpose(1, 2))  # (batch, L, C)
        length = tokens.shape[1]
        n, width = self.groups, self.input_dim // self.groups
        # (batch, L, n * width) -> (n * batch, L, width): the groups become sequences of one batch.
        groups = tokens.reshape(batch, length, n, width).permute(2, 0, 1, 3).reshape(n * batch, length, width)
        groups = self.mamba(groups) + self.skip_scale * groups
        tokens = groups.reshape(n, batch, length, width).permute(1, 2, 0, 3).reshape(batch, length, self.input_dim)
        out = self.proj(self.norm(tokens))
        return out.transpose(1, 2).reshape([batch, self.output_dim] + spatial)
