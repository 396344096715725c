"""The selective scan as a short graph of standard operators, for TorchScript, tracing and ONNX.

The recurrence ``h[t] = a[t] * h[t - 1] + x[t]`` (see :mod:`networks.scan`), with decays
``a[t] = exp(delta[t] * A)`` and inputs ``x[t] = delta[t] * u[t] * B[t]``, is cut into chunks of
``T = 8`` tokens, and every step below works on all chunks (and the whole batch) at once:

1. each chunk's end state from a zero start: ``T - 1`` unrolled multiply-adds, each on one
   token per chunk;
2. the state entering each chunk: the chunks' end states scanned across the chunks in doubling
   steps (Hillis-Steele; the recurrence is associative, ``(a1, x1)`` then ``(a2, x2)`` compose
   to ``(a2 * a1, a2 * x1 + x2)``), with a chunk's decay ``exp(A * sum(delta))``, on tensors
   ``T`` times smaller than the sequence;
3. the true states: the unrolled multiply-adds again, from the entering state; then
   ``y = h . C + D * u``.

So the graph has ``O(T + log(L / T))`` operators per scan, for any batch size, and makes
about 11 passes over sequence-sized tensors (counted from the operators: the decays and inputs,
their split by position, two unrolled loops, the stack and ``h . C``). Scanning the whole
sequence in doubling steps instead takes fewer operators but about 24 such passes, and
onnxruntime, bound by memory traffic here, runs the whole network slower that way.

Numerically it only multiplies decays ``exp(delta * A)`` in ``(0, 1]`` (nothing is divided or
exponentiated from a positive argument), so it cannot overflow; only the order of the sums
differs from the token-by-token reference.

``torch.export`` spends its time per recorded operator on symbolic shapes, and the scans'
~600 unrolled operators would be most of an ONNX export's time. Inside :func:`scan_as_one_operator`
each scan is instead recorded as ONE operator, ``ulvmunet::scan_export``, which
:mod:`networks.scan.onnx_graph` writes as ONNX operators directly (see
:func:`networks.onnx_export.export_onnx`). Outside it, ``torch.export`` records the unrolled
operators, which any consumer of an exported program understands.
"""

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

from .sequential import upcast

__all__ = ["scan_as_one_operator", "recording_one_operator", "scan_export", "selective_scan_unrolled"]

_one_operator = False  # a plain global: torch.compile traces the check below


@contextlib.contextmanager
def scan_as_one_operator() -> Iterator[None]:
    """Inside, ``torch.export`` records each selective scan as the single operator
    ``ulvmunet::scan_export`` (for exporters given its translation) instead of its unrolled
    operators."""
    global _one_operator
    before, _one_operator = _one_operator, True
    try:
        yield
    finally:
        _one_operator = before


def recording_one_operator() -> bool:
    """True while ``torch.export`` traces inside :func:`scan_as_one_operator`."""
    return torch.compiler.is_exporting() and _one_operator


def _shift(x: torch.Tensor, width: int, dim: int, fill: float) -> torch.Tensor:
    """``x`` moved ``width`` places forward along ``dim`` (a negative axis), the first
    ``width`` places filled with ``fill``."""
    pad = [0, 0] * (-dim - 1) + [width, 0]
    return F.pad(x.narrow(dim, 0, x.shape[dim] - width), pad, value=fill)


def _scan_along(decay: torch.Tensor, state: torch.Tensor, dim: int) -> torch.Tensor:
    """Inclusive scan of ``h = decay * h_prev + state`` along ``dim`` from ``h = 0``: every
    position's state, in ``log2`` of the length doubling steps."""
    width = 1
    length = state.shape[dim]
    while width < length:
        state = state + decay * _shift(state, width, dim, 0.0)
        if 2 * width < length:  # the decays only as far as the next step needs them
            decay = decay * _shift(decay, width, dim, 1.0)
        width *= 2
    return state


def _chunk_length(length: int) -> int:
    """Tokens per chunk: at most eight, since ``torch.export`` pays for every unrolled operator
    (the ONNX translation in :mod:`networks.scan.onnx_graph` chooses its own)."""
    chunk = 1
    while chunk < min(length, 8):
        chunk *= 2
    return chunk


def selective_scan_unrolled(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """Selective scan in ``O(T + log(L / T))`` whole-tensor steps; same arguments and result as
    :func:`networks.scan.selective_scan_sequential`.

    Example:
        >>> u, delta = torch.randn(2, 100, 12), torch.rand(2, 100, 12)
        >>> A, D = -torch.rand(12, 16), torch.ones(12)
        >>> B, C = torch.randn(2, 100, 16), torch.randn(2, 100, 16)
        >>> selective_scan_unrolled(u, delta, A, B, C, D).shape
        torch.Size([2, 100, 12])
    """
    u_f, delta, A, B, C, D = upcast([u, delta, A, B, C, D])
    batch, length, channels = u_f.shape
    states = A.shape[-1]
    chunk = _chunk_length(length)
    num_chunks = (length + chunk - 1) // chunk
    pad = num_chunks * chunk - length
    du = delta * u_f
    if pad:  # padded tokens get delta = 0 (decay 1, no input) after the real ones: nothing kept changes
        delta, du, B, C = [F.pad(t, (0, 0, 0, pad)) for t in (delta, du, B, C)]
    # (batch, num_chunks, channels, states) per position in the chunk
    shape = [batch, num_chunks, chunk, channels, states]
    decays = torch.exp(delta.unsqueeze(-1) * A).reshape(shape).unbind(2)
    inputs = (du.unsqueeze(-1) * B.unsqueeze(-2)).reshape(shape).unbind(2)
    h = inputs[0]
    if num_chunks > 1:
        for t in range(1, chunk):  # 1. every chunk's end state from zero
            h = decays[t] * h + inputs[t]
        chunk_decay = torch.exp(delta.reshape(batch, num_chunks, chunk, channels).sum(2).unsqueeze(-1) * A)
        ends = _scan_along(chunk_decay, h, dim=-3)  # 2. across the chunks
        h = decays[0] * _shift(ends, 1, -3, 0.0) + inputs[0]
    hs = [h]
    for t in range(1, chunk):  # 3. the true states
        h = decays[t] * h + inputs[t]
        hs.append(h)
    h = torch.stack(hs, 2).reshape(batch, num_chunks * chunk, channels, states)
    y = torch.matmul(h, C.unsqueeze(-1)).squeeze(-1)
    if pad:
        y = y[:, :length]
    y = y + u_f * D
    return y if y.dtype == u.dtype else y.to(u.dtype)


@torch.library.custom_op("ulvmunet::scan_export", mutates_args=())
def scan_export(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """:func:`selective_scan_unrolled` as one opaque operator, for exporters that translate it
    (no backward: it is for inference graphs)."""
    return selective_scan_unrolled(u, delta, A, B, C, D)


@scan_export.register_fake
def _(u, delta, A, B, C, D):
    return torch.empty_like(u)
