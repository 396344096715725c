"""The selective scan in pure PyTorch, chunked: the backend that runs on any device.

The sequence is cut into ``nc`` chunks of ``T ~ sqrt(L)`` tokens. A first loop runs the
recurrence (see :mod:`networks.scan`) inside all chunks at once from a zero state (``T``
steps), a second carries the end states across chunk boundaries (``nc`` steps), and a third
runs every chunk again from its true start state, reading the outputs. ``2T + nc`` Python
steps replace ``L``, each on one cache-sized slice of the state.

Eager PyTorch runs it in place, computing each token's terms again in the third phase rather
than storing them (fresh memory costs more than the arithmetic). Under TorchScript, tracing and
``torch.export`` (ONNX) the same recurrence runs as the short graph of
:mod:`networks.scan.export` instead. For training, the backward pass is written by hand: the gradient of the
states obeys the transposed recurrence, run backwards in the same three phases, and the
parameter gradients are read from the stored states along the way.

Token-major tensors, as the Mamba block produces them; float32 inside for
float16/bfloat16/float32 inputs (as the reference CUDA kernel does), float64 for float64.
"""

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from . import ops
from .export import selective_scan_unrolled
from .sequential import upcast

__all__ = ["selective_scan_chunked"]


def _chunk_len(length: int) -> int:
    # 2T + ceil(L / T) Python steps are needed; T = ceil(sqrt(L)) keeps that near its minimum.
    return max(1, math.ceil(math.sqrt(length)))


def _to_chunks(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """(batch, L, k) -> (chunk, batch, chunks, k), a view (no copy unless L needs padding to
    whole chunks). Padded tokens get delta = 0 (decay 1, no input) and sit after the real
    ones, so they change nothing that is kept."""
    batch, length, k = x.shape
    num_chunks = (length + chunk - 1) // chunk
    if num_chunks * chunk != length:
        x = F.pad(x, (0, 0, 0, num_chunks * chunk - length))
    return x.reshape(batch, num_chunks, chunk, k).permute(2, 0, 1, 3)


def _from_chunks(x: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`_to_chunks`."""
    chunk, batch, num_chunks, k = x.shape
    return x.permute(1, 2, 0, 3).reshape(batch, num_chunks * chunk, k)[:, :length]


def _chunked(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The scan's arguments at least in float32, their sequences cut into chunks."""
    chunk = _chunk_len(u.shape[1])
    u, delta, A, B, C, D = upcast([u, delta, A, B, C, D])
    return _to_chunks(u, chunk), _to_chunks(delta, chunk), A, _to_chunks(B, chunk), _to_chunks(C, chunk), D


def _carry_across_chunks(chunk_end: torch.Tensor, chunk_decay: torch.Tensor) -> torch.Tensor:
    """The true state entering each chunk, from each chunk's end state when started from zero
    and its total decay; all three (batch, chunks, channels, states)."""
    carry = torch.zeros_like(chunk_end[:, 0])
    entering = [carry]
    for k in range(chunk_end.shape[1] - 1):
        carry = torch.addcmul(chunk_end[:, k], chunk_decay[:, k], carry)
        entering.append(carry)
    return torch.stack(entering, dim=1)


def _chunk_decay(delta: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """exp(A * sum of delta over a chunk): the decay across each whole chunk."""
    return (delta.sum(0).unsqueeze(-1) * A).exp_()


def _token_terms(
    delta_t: torch.Tensor, du_t: torch.Tensor, A: torch.Tensor, B_t: torch.Tensor, decay: torch.Tensor, inputs: torch.Tensor
) -> None:
    """One token's decay ``exp(delta * A)`` and input ``delta * u * B``, for every chunk at
    once, written into the (batch, chunks, channels, states) buffers ``decay`` and ``inputs``."""
    torch.mul(delta_t.unsqueeze(-1), A, out=decay).exp_()
    torch.mul(du_t.unsqueeze(-1), B_t.unsqueeze(-2), out=inputs)


def _scan_chunks_in_place(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    states: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """The chunked scan outside autograd, allocating no state-sized tensor: each token's
    decay and input go to two cache-sized buffers and are computed again in the second pass,
    which costs less than writing them to fresh memory. Every state is written into
    ``states`` (T, batch, chunks, channels, states) when it is given (for the backward pass).
    """
    du = delta * u
    decay = delta.new_empty(delta.shape[1:] + A.shape[-1:])
    inputs = torch.empty_like(decay)
    end = torch.zeros_like(decay)
    for t in range(delta.shape[0]):
        _token_terms(delta[t], du[t], A, B[t], decay, inputs)
        torch.addcmul(inputs, decay, end, out=end)
    h = _carry_across_chunks(end, _chunk_decay(delta, A))
    C = C.contiguous()  # batched matmuls need each step's slice contiguous
    y = torch.empty(u.shape, dtype=u.dtype, device=u.device)
    for t in range(delta.shape[0]):
        _token_terms(delta[t], du[t], A, B[t], decay, inputs)
        h = torch.addcmul(inputs, decay, h, out=h if states is None else states[t])
        torch.matmul(h, C[t].unsqueeze(-1), out=y[t].unsqueeze(-1))  # sum over states
    return y.addcmul_(u, D)


def _forward(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor, keep_states: bool
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The in-place scan; every state is kept (T, batch, chunks, channels, states) for the
    backward pass when ``keep_states``."""
    u_c, delta_c, A_c, B_c, C_c, D_c = _chunked(u, delta, A, B, C, D)
    states = u_c.new_empty(0)
    if keep_states:  # contiguous: the backward pass takes batched matmuls of per-token slices
        u_c, delta_c, B_c, C_c = u_c.contiguous(), delta_c.contiguous(), B_c.contiguous(), C_c.contiguous()
        states = u_c.new_empty(u_c.shape + A_c.shape[-1:])
    y = _scan_chunks_in_place(u_c, delta_c, A_c, B_c, C_c, D_c, states if keep_states else None)
    return _from_chunks(y, u.shape[1]).to(u.dtype).contiguous(), states


def _states_shape(u: torch.Tensor, A: torch.Tensor) -> Tuple[List[int], torch.dtype]:
    chunk = _chunk_len(u.shape[1])
    num_chunks = (u.shape[1] + chunk - 1) // chunk
    return [chunk, u.shape[0], num_chunks, u.shape[2], A.shape[1]], torch.promote_types(u.dtype, torch.float32)


def _backward(
    grad_y: torch.Tensor,
    u_in: torch.Tensor,
    delta_in: torch.Tensor,
    A_in: torch.Tensor,
    B_in: torch.Tensor,
    C_in: torch.Tensor,
    D_in: torch.Tensor,
    h: torch.Tensor,
) -> List[torch.Tensor]:
    """The hand-written backward pass: the transposed recurrence in the same chunked form, with
    every parameter gradient taken along the way, instead of autograd replaying each of the
    forward's small steps. ``h`` holds the forward's states."""
    u, delta, A, B, C, D = (t.contiguous() for t in _chunked(u_in, delta_in, A_in, B_in, C_in, D_in))
    length = u_in.shape[1]
    dtypes = [t.dtype for t in (u_in, delta_in, A_in, B_in, C_in, D_in)]
    chunk = u.shape[0]
    gy = _to_chunks(grad_y.to(u.dtype), chunk).contiguous()
    du = delta * u
    decay, inputs, inject = torch.empty_like(h[0]), torch.empty_like(h[0]), torch.empty_like(h[0])

    def inject_at(t: int) -> torch.Tensor:
        """What the loss puts into state t directly: C[t] gy[t]."""
        return torch.mul(gy[t].unsqueeze(-1), C[t].unsqueeze(-2), out=inject)

    # State gradients obey the transposed recurrence g[t] = C[t] gy[t] + a[t+1] g[t+1], run
    # backwards in the forward's phases. 1. Every chunk from a zero gradient at its end.
    g = inject_at(chunk - 1).clone()
    for t in range(chunk - 1, 0, -1):
        _token_terms(delta[t], du[t], A, B[t], decay, inputs)
        g.mul_(decay).add_(inject_at(t - 1))
    _token_terms(delta[0], du[0], A, B[0], decay, inputs)
    # 2. Right to left across the chunk boundaries: what reaches each chunk's last state.
    from_right = _carry_across_chunks((decay * g).flip(1), _chunk_decay(delta, A).flip(1)).flip(1)
    # 3. Every chunk again from its true end gradient, taking each token's parameter
    #    gradients while its slice is in cache.
    g_du, g_delta_a, g_B = torch.empty_like(u), torch.empty_like(u), torch.empty_like(B)
    g_A = torch.zeros_like(A)
    g = inject_at(chunk - 1) + from_right
    for t in range(chunk - 1, -1, -1):
        _token_terms(delta[t], du[t], A, B[t], decay, inputs)
        # h[t] - x[t] = a[t] h[t-1]; times g it is dLoss/d(delta[t] * A), element by element.
        g_log_decay = torch.sub(h[t], inputs).mul_(g)
        torch.matmul(g, B[t].unsqueeze(-1), out=g_du[t].unsqueeze(-1))  # sums over states
        torch.matmul(du[t].unsqueeze(-2), g, out=g_B[t].unsqueeze(-2))  # sums over channels
        torch.sum(g_log_decay * A, -1, out=g_delta_a[t])
        g_A += (g_log_decay * delta[t].unsqueeze(-1)).sum((0, 1))
        if t > 0:
            g.mul_(decay).add_(inject_at(t - 1))
    grads = [
        g_du * delta + gy * D,  # u
        g_du * u + g_delta_a,  # delta
        g_A,
        g_B,
        torch.matmul(gy.unsqueeze(-2), h).squeeze(-2),  # C
        (gy * u).sum((0, 1, 2)),  # D
    ]
    for i in (0, 1, 3, 4):
        grads[i] = _from_chunks(grads[i], length)
    return [g.to(dtype) for g, dtype in zip(grads, dtypes)]


_scan_operator = ops.scan_operator("torch", _forward, _backward, _states_shape)


@torch.jit.unused
def _eager(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """The in-place scan and its hand-written backward pass, as one custom operator."""
    return _scan_operator(u, delta, A, B, C, D)


def _exporting() -> bool:
    """Scripting, tracing and export see plain tensor code (``torch.compile`` sees the operator)."""
    if torch.jit.is_scripting():
        return True
    return _tracing_or_exporting()


@torch.jit.unused
def _tracing_or_exporting() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def selective_scan_chunked(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """Selective scan in ``2T + L / T`` vectorised steps; same arguments and result as
    :func:`networks.scan.selective_scan_sequential`.

    Eager PyTorch runs an in-place version that allocates no state-sized temporaries and, when
    gradients are needed, a hand-written backward pass. Under TorchScript, tracing or
    ``torch.export`` (ONNX) :func:`networks.scan.export.selective_scan_unrolled` runs instead:
    plain tensor code in ``O(T + log(L / T))`` operators, which autograd can differentiate.

    Example:
        >>> u, delta = torch.randn(2, 100, 12), torch.rand(2, 100, 12)
        >>> A, D = -torch.rand(12, 16), torch.ones(12)
        >>> B, C = torch.randn(2, 100, 16), torch.randn(2, 100, 16)
        >>> selective_scan_chunked(u, delta, A, B, C, D).shape
        torch.Size([2, 100, 12])
    """
    if not _exporting():
        return _eager(u, delta, A, B, C, D)
    return selective_scan_unrolled(u, delta, A, B, C, D)
