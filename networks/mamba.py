"""The Mamba block (selective state-space model), parameter-compatible with ``mamba_ssm.Mamba``."""

import logging
import math
from typing import Set

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import cuda_kernels
from .selective_scan import selective_scan_chunked, selective_scan_sequential

__all__ = ["Mamba", "SCAN_BACKENDS"]

logger = logging.getLogger(__name__)

#: ``auto`` takes ``cuda`` for CUDA tensors when mamba-ssm imports, ``torch`` otherwise.
#: ``sequential`` is the slow token-by-token reference, for checks and benchmarks.
SCAN_BACKENDS = ("auto", "torch", "cuda", "sequential")

_announced: Set[str] = set()


def _announce(backend: str) -> None:
    if backend not in _announced:
        _announced.add(backend)
        logger.info("selective scan backend: %s", backend)


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
        scan_backend: one of :data:`SCAN_BACKENDS`.

    Shape:
        (batch, length, d_model) -> (batch, length, d_model).

    Example:
        >>> block = Mamba(d_model=8)
        >>> block(torch.randn(2, 100, 8)).shape
        torch.Size([2, 100, 8])
    """

    def __init__(
        self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, scan_backend: str = "auto"
    ) -> None:
        super().__init__()
        if scan_backend not in SCAN_BACKENDS:
            raise ValueError(f"scan_backend must be one of {SCAN_BACKENDS}, got {scan_backend!r}")
        if scan_backend == "cuda" and not cuda_kernels.cuda_kernels_available():
            raise ImportError(
                "scan_backend='cuda' needs the mamba-ssm CUDA kernels (pip install 'ultralight-vmunet[cuda]' "
                "on a machine with CUDA); scan_backend='auto' or 'torch' runs anywhere"
            )
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
        if not torch.jit.is_scripting() and self._use_cuda_kernels(x):
            return self._forward_cuda(x)
        length = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :length]).transpose(1, 2)  # causal: first L outputs
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log.float())
        if self.scan_backend == "sequential":
            y = selective_scan_sequential(u, delta, A, B, C, self.D)
        else:
            y = selective_scan_chunked(u, delta, A, B, C, self.D)
        return self.out_proj(y * F.silu(z))

    @torch.jit.unused
    def _use_cuda_kernels(self, x: torch.Tensor) -> bool:
        if self.scan_backend == "cuda" and not x.is_cuda:
            raise ValueError(f"scan_backend='cuda' runs on CUDA tensors only, got one on {x.device}; use 'auto'")
        use = self.scan_backend == "cuda" or (
            self.scan_backend == "auto" and x.is_cuda and cuda_kernels.cuda_kernels_available()
        )
        _announce("cuda (mamba-ssm kernels)" if use else "sequential" if self.scan_backend == "sequential" else "torch")
        return use

    @torch.jit.unused
    def _forward_cuda(self, x: torch.Tensor) -> torch.Tensor:
        """The reference release's CUDA path: channel-major tensors into the fused kernels."""
        length = x.shape[1]
        u, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (batch, d_inner, length)
        weight = self.conv1d.weight.squeeze(1)
        if cuda_kernels.causal_conv1d_fn is not None:
            u = cuda_kernels.causal_conv1d_fn(u.contiguous(), weight, self.conv1d.bias, activation="silu")
        else:
            u = F.silu(self.conv1d(u)[..., :length])
        dt, B, C = self.x_proj(u.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # the bias goes to the kernel
        y = cuda_kernels.selective_scan_fn(
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
