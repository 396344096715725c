"""The Mamba block (selective state-space model), parameter-compatible with ``mamba_ssm.Mamba``."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import scan
from .scan import mamba_ssm_kernels, selective_scan_chunked, selective_scan_sequential

__all__ = ["Mamba"]


class Mamba(nn.Module):
    """Mamba block on token sequences, with the parameter names of ``mamba_ssm.Mamba``
    (so its checkpoints load unchanged).

    ``d_inner = expand * d_model`` channels are projected in, mixed along the sequence by a
    causal depthwise convolution, passed through the selective scan, gated by ``silu(z)``
    and projected back to ``d_model``.

    Args:
        d_model: token width.
        d_state: SSM state size per channel.
        d_conv: causal convolution width.
        expand: ``d_inner / d_model``.
        scan_backend: one of :data:`networks.scan.SCAN_BACKENDS`.

    Shape:
        (batch, length, d_model) -> (batch, length, d_model).

    Example:
        >>> block = Mamba(d_model=8)
        >>> block(torch.randn(2, 100, 8)).shape
        torch.Size([2, 100, 8])
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, scan_backend: str = "auto") -> None:
        super().__init__()
        scan.check_backend(scan_backend)
        self.d_model = d_model
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.scan_backend = scan_backend

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.empty(self.d_inner, d_state))
        self.D = nn.Parameter(torch.empty(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self, dt_min: float = 1e-3, dt_max: float = 0.1) -> None:
        """``mamba_ssm``'s initialisation: S4D-real ``A = -(1..d_state)``, ``D = 1``, and
        ``dt_proj`` such that ``softplus(bias)`` is log-uniform in ``[dt_min, dt_max]``."""
        self.A_log.copy_(torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D.fill_(1.0)
        bound = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=1e-4)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and self._backend(x) == "cuda":
            return self._forward_cuda(x)
        length = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :length]).transpose(1, 2)  # causal: first L outputs
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log.float())
        if torch.jit.is_scripting():  # TorchScript sees plain tensor code only
            if self.scan_backend == "sequential":
                y = selective_scan_sequential(u, delta, A, B, C, self.D)
            else:
                y = selective_scan_chunked(u, delta, A, B, C, self.D)
        else:
            y = self._scan(u, delta, A, B, C)
        return self.out_proj(y * F.silu(z))

    @torch.jit.unused
    def _backend(self, x: torch.Tensor) -> str:
        backend = scan.resolve_backend(self.scan_backend, x.device)
        if backend == "cuda":
            scan.announce("cuda (mamba-ssm kernels)")
        return backend

    @torch.jit.unused
    def _scan(self, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        return scan.selective_scan(u, delta, A, B, C, self.D, backend=self.scan_backend)

    @torch.jit.unused
    def _forward_cuda(self, x: torch.Tensor) -> torch.Tensor:
        """The reference release's CUDA path: channel-major tensors into the fused kernels."""
        length = x.shape[1]
        u, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (batch, d_inner, length)
        weight = self.conv1d.weight.squeeze(1)
        if mamba_ssm_kernels.causal_conv1d_fn is not None:
            u = mamba_ssm_kernels.causal_conv1d_fn(u.contiguous(), weight, self.conv1d.bias, activation="silu")
        else:
            u = F.silu(self.conv1d(u)[..., :length])
        dt, B, C = self.x_proj(u.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # the bias goes to the kernel
        y = mamba_ssm_kernels.selective_scan_fn(
            u.contiguous(),
            delta.contiguous(),
            -torch.exp(self.A_log.float()),
            B.transpose(1, 2).contiguous(),
            C.transpose(1, 2).contiguous(),
            self.D.float(),
            z=z.contiguous(),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
        )
        return self.out_proj(y.transpose(1, 2))
