"""The selective scan written directly in ONNX operators (onnxscript), for the ONNX exporter.

It computes the recurrence of :mod:`networks.scan`,

    h[t] = exp(delta[t] * A) * h[t - 1] + delta[t] * u[t] * B[t]      (per channel c, state n)
    y[t] = h[t] . C[t] + D * u[t]

from ``h[-1] = 0`` in chunks of ``T`` tokens, like
:func:`networks.scan.export.selective_scan_unrolled`: each chunk's end state from a zero start
(``T - 1`` unrolled multiply-adds, each on one position of every chunk at once), the state
entering each chunk carried from chunk to chunk, then the true states from the entering ones,
read out as they are made. It is arranged for onnxruntime, whose elementwise operators are
fast on long contiguous runs and slow on short ones:

- Position-major layout. The sequence-by-state tensors are made and kept one position of the
  chunk at a time, as (1, S, Ch, batch, K) for the ``K = L / T`` chunks: the batch and the
  chunks are the innermost, contiguous axes, the states the outermost: with the states
  innermost, the decays, inputs and read-outs would run in short runs of 16 floats.
  ``h . C`` is a product and a sum over the outer state axis, the sum written as a MatMul with
  a row of ones (onnxruntime's ReduceSum over that axis costs as much as a recurrence step).
- Balanced chunks: ``T`` is the power of two nearest above ``sqrt(L)`` (32 tokens at L = 1024,
  8 at L = 64), so that a position's tensors stay small enough for the CPU's cache and the
  carry across chunks is short.
- The carry across chunks is one small multiply-add per chunk, on (1, S, Ch, batch, 1) slices.
  Doubling steps across the chunks would take fewer operators, but they shift tensors along
  their innermost axis, which onnxruntime copies in short runs.

The layout costs operators (1,614 graph nodes for the 256 x 256 network) and saves memory
traffic, which is what bounds onnxruntime here. It only multiplies decays ``exp(delta * A)``
in ``(0, 1]``: nothing overflows.

Layout of the arguments: ``u``, ``delta`` (batch, L, Ch), ``A`` (Ch, S), ``B``, ``C`` (batch,
L, S), ``D`` (Ch,), float32; ``L``, ``Ch`` and ``S`` fixed, the batch any size.

Written here, the scan is translated at once, instead of being recorded by ``torch.export``
operator by operator, which is the slow part of an export. :func:`networks.onnx_export.export_onnx`
passes :data:`TRANSLATIONS` to ``torch.onnx.export``.
"""

from typing import List

import onnx
import torch
from onnxscript import opset18 as op

__all__ = ["TRANSLATIONS", "selective_scan_onnx"]


def _chunk_length(length: int) -> int:
    """Tokens per chunk: the power of two nearest above ``sqrt(length)``."""
    chunk = 1
    while chunk * chunk < length:
        chunk *= 2
    return chunk


def _by_position(x, chunk: int, num_chunks: int, width: int, states_first: bool) -> List:
    """(batch, L, width) ``x`` as ``chunk`` tensors, one per position in the chunk, each
    (1, width, 1, batch, K) if ``states_first`` else (1, 1, width, batch, K)."""
    x = op.Transpose(op.Reshape(x, [-1, num_chunks, chunk, width]), perm=[2, 3, 0, 1])  # (T, width, batch, K)
    x = op.Reshape(x, [chunk, width, 1, -1, num_chunks] if states_first else [chunk, 1, width, -1, num_chunks])
    return [x] if chunk == 1 else list(op.Split(x, axis=0, num_outputs=chunk))


def _entering_states(ends, chunk_decay, num_chunks: int):
    """The state entering each chunk, (1, S, Ch, batch, K), from each chunk's end state (started
    from zero) and decay: carried from chunk to chunk, one (1, S, Ch, batch, 1) step per chunk;
    zero into the first."""
    ends = op.Split(ends, axis=-1, num_outputs=num_chunks)
    chunk_decay = op.Split(chunk_decay, axis=-1, num_outputs=num_chunks)
    leaving = [ends[0]]  # the true state leaving chunks 0 .. K - 2
    for k in range(1, num_chunks - 1):
        leaving.append(op.Add(op.Mul(chunk_decay[k], leaving[-1]), ends[k]))
    leaving = leaving[0] if num_chunks == 2 else op.Concat(*leaving, axis=-1)
    return op.Pad(leaving, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0], op.CastLike(op.Constant(value_float=0.0), leaving))


def _read_out(h, c, ones, states: int):
    """``h . C`` of one position: (1, S, Ch, batch, K) and (1, S, 1, batch, K) to (1, Ch * batch * K),
    summed over the states by ``ones`` (1, S)."""
    return op.MatMul(ones, op.Reshape(op.Mul(h, c), [states, -1]))


def selective_scan_onnx(u, delta, A, B, C, D):
    """The ONNX translation of ``ulvmunet::scan_export``: ``y`` (batch, L, Ch) from the
    arguments of :func:`networks.scan.selective_scan` (onnxscript values)."""
    _, length, channels = u.shape
    states = A.shape[-1]
    chunk = _chunk_length(length)
    num_chunks = -(-length // chunk)
    pad = num_chunks * chunk - length
    du = op.Mul(delta, u)
    if pad:  # padded tokens get delta = 0 (decay 1, no input) after the real ones: nothing kept changes
        delta, du, B, C = [op.Pad(t, [0, 0, 0, 0, pad, 0]) for t in (delta, du, B, C)]
    A = op.Reshape(op.Transpose(A, perm=[1, 0]), [1, states, channels, 1, 1])
    deltas = _by_position(delta, chunk, num_chunks, channels, states_first=False)
    decays = [op.Exp(op.Mul(d, A)) for d in deltas]  # (1, S, Ch, batch, K) each
    Bs = _by_position(B, chunk, num_chunks, states, states_first=True)
    inputs = [op.Mul(x, b) for x, b in zip(_by_position(du, chunk, num_chunks, channels, states_first=False), Bs)]
    Cs = _by_position(C, chunk, num_chunks, states, states_first=True)

    h = inputs[0]
    if num_chunks > 1:
        for t in range(1, chunk):  # each chunk's end state from zero
            h = op.Add(op.Mul(decays[t], h), inputs[t])
        chunk_decay = op.Exp(op.Mul(op.Sum(*deltas), A))  # a chunk's decay, exp(A * sum(delta))
        h = op.Add(op.Mul(decays[0], _entering_states(h, chunk_decay, num_chunks)), inputs[0])
    ones = op.Constant(value=onnx.helper.make_tensor("ones", onnx.TensorProto.FLOAT, [1, states], [1.0] * states))
    ys = [_read_out(h, Cs[0], ones, states)]
    for t in range(1, chunk):  # the true states, read out as they are made
        h = op.Add(op.Mul(decays[t], h), inputs[t])
        ys.append(_read_out(h, Cs[t], ones, states))
    y = op.Reshape(ys[0] if chunk == 1 else op.Concat(*ys, axis=0), [chunk, channels, -1, num_chunks])
    y = op.Reshape(op.Transpose(y, perm=[2, 3, 0, 1]), [-1, num_chunks * chunk, channels])  # (batch, L, Ch)
    if pad:
        y = op.Slice(y, [0], [length], [1])
    return op.Add(y, op.Mul(u, D))


TRANSLATIONS = {torch.ops.ulvmunet.scan_export.default: selective_scan_onnx}
