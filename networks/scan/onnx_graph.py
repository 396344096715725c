"""The selective scan written directly in ONNX operators (onnxscript), for the ONNX exporter.

It computes the recurrence of :mod:`networks.scan`,

    h[t] = exp(delta[t] * A) * h[t - 1] + delta[t] * u[t] * B[t]      (per channel c, state n)
    y[t] = h[t] . C[t] + D * u[t]

from ``h[-1] = 0``, by the chunked method of :func:`networks.scan.export.selective_scan_unrolled`
(chunks of ``T = 8`` tokens; the chunks' end states carried across the chunks in doubling
steps). Layout: ``u``, ``delta`` (batch, L, Ch), ``A`` (Ch, S), ``B``, ``C`` (batch, L, S), ``D``
(Ch,), float32; ``L``, ``Ch`` and ``S`` fixed, the batch any size. Every step works on one
position of all chunks at once, a (batch, L / T, 1, Ch, S) tensor: the decays and inputs are
made per position from the small (batch, L, Ch) tensors, and ``h . C`` is taken per position, so
no sequence-by-state tensor is split, stacked or copied (in two back-to-back runs on one thread
at batch 8, onnxruntime ran the whole network 3 % and 12 % faster this way than with the
unrolled PyTorch scan as ``torch.export`` records it).

Written here, the scan is translated in milliseconds; recorded by ``torch.export`` operator by
operator it took about 30 of the export's 60 seconds. :func:`networks.onnx_export.export_onnx`
passes :data:`TRANSLATIONS` to ``torch.onnx.export``.
"""

from typing import List

import torch
from onnxscript import opset18 as op

from .export import chunk_length

__all__ = ["TRANSLATIONS", "selective_scan_onnx"]


def _positions(x, chunk: int) -> List:
    """A (batch, K, chunk, ...) tensor as ``chunk`` tensors (batch, K, 1, ...), one per position."""
    return [x] if chunk == 1 else list(op.Split(x, axis=2, num_outputs=chunk))


def _shift(x, width: int, num_chunks: int, fill: float):
    """(batch, K, 1, Ch, S) ``x`` moved ``width`` chunks on, the first ``width`` filled with ``fill``."""
    kept = op.Slice(x, [0], [num_chunks - width], [1])
    return op.Pad(kept, [0, width, 0, 0, 0, 0, 0, 0, 0, 0], op.CastLike(op.Constant(value_float=fill), x))


def _entering_states(ends, chunk_decay, num_chunks: int):
    """The state entering each chunk, from each chunk's end state (started from zero) and decay:
    an inclusive scan across the chunks in doubling steps, shifted by one chunk."""
    width = 1
    while width < num_chunks:
        ends = op.Add(ends, op.Mul(chunk_decay, _shift(ends, width, num_chunks, 0.0)))
        if 2 * width < num_chunks:  # the decays only as far as the next step needs them
            chunk_decay = op.Mul(chunk_decay, _shift(chunk_decay, width, num_chunks, 1.0))
        width *= 2
    return _shift(ends, 1, num_chunks, 0.0)


def selective_scan_onnx(u, delta, A, B, C, D):
    """The ONNX translation of ``ulvmunet::scan_export``: ``y`` (batch, L, Ch) from the
    arguments of :func:`networks.scan.selective_scan` (onnxscript values)."""
    _, length, channels = u.shape
    states = A.shape[-1]
    chunk = chunk_length(length)
    num_chunks = -(-length // chunk)
    pad = num_chunks * chunk - length
    du = op.Mul(delta, u)
    if pad:  # padded tokens get delta = 0 (decay 1, no input) after the real ones: nothing kept changes
        delta, du, B, C = [op.Pad(t, [0, 0, 0, 0, pad, 0]) for t in (delta, du, B, C)]
    delta = op.Reshape(delta, [-1, num_chunks, chunk, channels, 1])
    # per position in the chunk: (batch, K, 1, Ch, S) decays and inputs, C as (batch, K, 1, S, 1)
    decays = [op.Exp(op.Mul(d, A)) for d in _positions(delta, chunk)]
    dus = _positions(op.Reshape(du, [-1, num_chunks, chunk, channels, 1]), chunk)
    Bs = _positions(op.Reshape(B, [-1, num_chunks, chunk, 1, states]), chunk)
    Cs = _positions(op.Reshape(C, [-1, num_chunks, chunk, states, 1]), chunk)
    inputs = [op.Mul(x, b) for x, b in zip(dus, Bs)]

    h = inputs[0]
    if num_chunks > 1:
        for t in range(1, chunk):  # each chunk's end state from zero
            h = op.Add(op.Mul(decays[t], h), inputs[t])
        chunk_decay = op.Exp(op.Mul(op.ReduceSum(delta, [2], keepdims=1), A))
        h = op.Add(op.Mul(decays[0], _entering_states(h, chunk_decay, num_chunks)), inputs[0])
    ys = [op.MatMul(h, Cs[0])]
    for t in range(1, chunk):  # the true states, read out as they are made
        h = op.Add(op.Mul(decays[t], h), inputs[t])
        ys.append(op.MatMul(h, Cs[t]))
    y = op.Reshape(ys[0] if chunk == 1 else op.Concat(*ys, axis=2), [-1, num_chunks * chunk, channels])
    if pad:
        y = op.Slice(y, [0], [length], [1])
    return op.Add(y, op.Mul(u, D))


TRANSLATIONS = {torch.ops.ulvmunet.scan_export.default: selective_scan_onnx}
