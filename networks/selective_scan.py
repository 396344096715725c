"""The selective scan of Mamba (S6), in pure PyTorch.

For every channel ``c`` and state ``n`` the scan runs the linear recurrence

    h[t] = exp(delta[t, c] * A[c, n]) * h[t - 1] + delta[t, c] * B[t, n] * u[t, c]
    y[t, c] = sum_n C[t, n] * h[t, n] + D[c] * u[t, c]

from ``h[-1] = 0``. Two implementations with the same math live here:

* :func:`selective_scan_sequential`: the recurrence written as it reads, one Python step per
  token. It is the reference the tests compare against, and the benchmark's slow baseline.
* :func:`selective_scan_chunked`: the fast one. The sequence is cut into ``nc`` chunks of
  ``T ~ sqrt(L)`` tokens. A first loop runs the recurrence inside all chunks at once from a
  zero state (``T`` steps), a second carries the end states across chunk boundaries (``nc``
  steps), and a third runs every chunk again from its true start state, reading the outputs.
  ``2T + nc`` Python steps replace ``L``; each works on one cache-sized slice of the state;
  every operator is a standard one (so the function scripts with TorchScript and exports to
  ONNX), and autograd gives the backward pass.

Both take token-major tensors, as the Mamba block produces them, and run in float32 for
float16/bfloat16/float32 inputs (as the reference CUDA kernel does), in float64 for float64.
"""

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F

__all__ = ["selective_scan_chunked", "selective_scan_sequential"]


def _upcast(tensors: List[torch.Tensor]) -> List[torch.Tensor]:
    """At least float32 (half inputs are upcast, float64 ones stay float64 for checks)."""
    dtype = torch.promote_types(tensors[0].dtype, torch.float32)
    return [t.to(dtype) for t in tensors]


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
    u_c, delta, A, B, C, D = _upcast([u, delta, A, B, C, D])
    batch, length, channels = u_c.shape
    h = u_c.new_zeros(batch, channels, A.shape[1])
    ys: List[torch.Tensor] = []
    for t in range(length):
        decay = torch.exp(delta[:, t, :, None] * A)
        h = decay * h + (delta[:, t] * u_c[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=1) + u_c * D
    return y.to(u.dtype)


def _chunk_len(length: int) -> int:
    # T + ceil(L / T) Python steps are needed; T = ceil(sqrt(L)) makes that smallest.
    return max(1, int(math.ceil(math.sqrt(length))))


def _time_major(x: torch.Tensor, num_chunks: int, chunk: int) -> torch.Tensor:
    """(batch, num_chunks * chunk, k) -> (chunk, batch, num_chunks, k), contiguous per step."""
    return x.reshape(x.shape[0], num_chunks, chunk, x.shape[-1]).permute(2, 0, 1, 3).contiguous()


def _carry_across_chunks(chunk_decay: torch.Tensor, chunk_end: torch.Tensor) -> torch.Tensor:
    """State entering each chunk, from each chunk's total decay and its end state when started
    from zero. Both inputs have shape (batch, chunks, channels, states); so has the result."""
    carry = torch.zeros_like(chunk_end[:, 0])
    entering = [carry]
    for k in range(chunk_end.shape[1] - 1):
        carry = torch.addcmul(chunk_end[:, k], chunk_decay[:, k], carry)
        entering.append(carry)
    return torch.stack(entering, dim=1)


def selective_scan_chunked(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """Selective scan in ``2T + L / T`` vectorised steps; same arguments and result as
    :func:`selective_scan_sequential`.

    Example:
        >>> u, delta = torch.randn(2, 100, 12), torch.rand(2, 100, 12)
        >>> A, D = -torch.rand(12, 16), torch.ones(12)
        >>> B, C = torch.randn(2, 100, 16), torch.randn(2, 100, 16)
        >>> selective_scan_chunked(u, delta, A, B, C, D).shape
        torch.Size([2, 100, 12])
    """
    u_c, delta, A, B, C, D = _upcast([u, delta, A, B, C, D])
    batch, length, channels = u_c.shape
    chunk = _chunk_len(length)
    num_chunks = (length + chunk - 1) // chunk
    pad = num_chunks * chunk - length
    if pad > 0:
        # Padded tokens have delta = 0 (decay 1, no input) and sit after the real ones, so
        # they change nothing that is kept.
        u_c, delta, B, C = [F.pad(t, (0, 0, 0, pad)) for t in (u_c, delta, B, C)]

    delta_t = _time_major(delta, num_chunks, chunk)  # (T, batch, chunks, channels)
    du_t = _time_major(delta * u_c, num_chunks, chunk)
    B_t = _time_major(B, num_chunks, chunk).unsqueeze(-2)  # (T, batch, chunks, 1, states)
    C_t = _time_major(C, num_chunks, chunk).unsqueeze(-2)

    # 1. Every chunk's end state when started from zero, all chunks at once. Each step works on
    #    one (batch, chunks, channels, states) slice, small enough to stay in cache.
    decays: List[torch.Tensor] = []
    inputs: List[torch.Tensor] = []
    h = torch.zeros_like(du_t[0].unsqueeze(-1) * B_t[0])
    for t in range(chunk):
        decays.append(torch.exp(delta_t[t].unsqueeze(-1) * A))
        inputs.append(du_t[t].unsqueeze(-1) * B_t[t])
        h = torch.addcmul(inputs[t], decays[t], h)
    # 2. The true state entering each chunk: carried over chunk boundaries.
    h = _carry_across_chunks(torch.exp(delta_t.sum(0).unsqueeze(-1) * A), h)
    # 3. Every chunk again, from its true start state, reading the outputs.
    ys: List[torch.Tensor] = []
    for t in range(chunk):
        h = torch.addcmul(inputs[t], decays[t], h)
        ys.append((h * C_t[t]).sum(-1))
    y = torch.stack(ys) + _time_major(u_c, num_chunks, chunk) * D

    y = y.permute(1, 2, 0, 3).reshape(batch, num_chunks * chunk, channels)[:, :length]
    return y.to(u.dtype)
