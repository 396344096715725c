"""The selective scan as Triton kernels: GPUs without building anything.

Triton ships with CUDA builds of PyTorch and compiles these kernels at run time, so a CUDA
machine gets a fused scan without the ``mamba-ssm`` build. With ``TRITON_INTERPRET=1`` Triton
runs the same kernels on the CPU (slowly), which is how the tests check them without a GPU.

One program scans one (sequence ``b``, channel ``c``) pair over the whole sequence, in tiles
of ``BLOCK_L`` tokens by ``BLOCK_N`` states (``d_state`` padded to a power of two):

    forward   a[t] = exp(delta[t] * A)          x[t] = delta[t] * u[t] * B[t]
              h[t] = a[t] * h[t - 1] + x[t]      (associative scan inside a tile, the
                                                  state entering the tile carried in)
              y[t] = <C[t], h[t]> + D * u[t]

    backward  g[t] = gy[t] * C[t] + a[t + 1] * g[t + 1]   (the transposed recurrence: a
                                                  reverse associative scan, tiles visited
                                                  last to first, g carried out of each)
              with h[t] recomputed in each tile from its saved entering state,
              d delta[t] = <g[t], A * (h[t] - x[t]) + u[t] * B[t]>
              d u[t]     = delta[t] * <g[t], B[t]> + D * gy[t]
              d A       += g[t] * (h[t] - x[t]) * delta[t]       (per program, summed after)
              d B[t]    += g[t] * delta[t] * u[t]                (atomic over channels)
              d C[t]    += gy[t] * h[t]                          (atomic over channels)
              d D       += gy[t] * u[t]                          (per program, summed after)

``h[t] - x[t] = a[t] * h[t - 1]``, so no shifted state is ever needed. Only the states
entering each tile are kept for the backward pass: (batch, channels, tiles, states) float32.

Memory layout: any strides. ``u``, ``delta``, ``y`` and their gradients are (batch, length,
channels) token-major as the Mamba block makes them; ``B``, ``C`` (batch, length, states);
``A`` (channels, states) and ``D`` (channels,) contiguous. All arithmetic is float32;
float16/bfloat16 inputs are read as they are and ``y`` is written in the dtype of ``u``.
"""

from typing import List, Tuple

import torch
import triton
import triton.language as tl

from .chunked import selective_scan_chunked
from .ops import scan_operator

__all__ = ["selective_scan_triton"]


@triton.jit
def _compose(a_first, x_first, a_then, x_then):
    """Two steps h -> a h + x applied in turn, as one step."""
    return a_first * a_then, a_then * x_first + x_then


@triton.jit
def _load_tile(u_ptr, delta_ptr, B_ptr, C_ptr, b, c, t, n, L, N, su_b, su_l, su_c, sd_b, sd_l, sd_c, sb_b, sb_l, sb_n, sc_b, sc_l, sc_n):
    """u, delta (tokens,) and B, C (tokens, states) of one tile as float32; zeros outside."""
    in_l = t < L
    in_ln = in_l[:, None] & (n[None, :] < N)
    u = tl.load(u_ptr + b * su_b + t * su_l + c * su_c, mask=in_l, other=0.0).to(tl.float32)
    delta = tl.load(delta_ptr + b * sd_b + t * sd_l + c * sd_c, mask=in_l, other=0.0).to(tl.float32)
    B = tl.load(B_ptr + b * sb_b + t[:, None] * sb_l + n[None, :] * sb_n, mask=in_ln, other=0.0).to(tl.float32)
    C = tl.load(C_ptr + b * sc_b + t[:, None] * sc_l + n[None, :] * sc_n, mask=in_ln, other=0.0).to(tl.float32)
    return u, delta, B, C


@triton.jit
def _scan_forward_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, y_ptr, states_ptr,
    L, CH, N, num_tiles,
    su_b, su_l, su_c, sd_b, sd_l, sd_c, sb_b, sb_l, sb_n, sc_b, sc_l, sc_n, sy_b, sy_l, sy_c,
    SAVE_STATES: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    b = tl.program_id(0)
    c = tl.program_id(1)
    rows = tl.arange(0, BLOCK_L)
    n = tl.arange(0, BLOCK_N)
    A = tl.load(A_ptr + c * N + n, mask=n < N, other=0.0).to(tl.float32)
    D = tl.load(D_ptr + c).to(tl.float32)
    h = tl.zeros([BLOCK_N], dtype=tl.float32)  # the state entering the tile
    for k in range(num_tiles):
        t = k * BLOCK_L + rows
        u, delta, B, C = _load_tile(u_ptr, delta_ptr, B_ptr, C_ptr, b, c, t, n, L, N,
                                    su_b, su_l, su_c, sd_b, sd_l, sd_c, sb_b, sb_l, sb_n, sc_b, sc_l, sc_n)
        if SAVE_STATES:
            tl.store(states_ptr + ((b * CH + c) * num_tiles + k) * BLOCK_N + n, h)
        decay = tl.exp(delta[:, None] * A[None, :])  # padded tokens: delta 0, decay 1, no input
        decay_so_far, h_from_zero = tl.associative_scan((decay, (delta * u)[:, None] * B), 0, _compose)
        hs = h_from_zero + decay_so_far * h[None, :]
        y = tl.sum(hs * C, axis=1) + D * u
        tl.store(y_ptr + b * sy_b + t * sy_l + c * sy_c, y.to(y_ptr.dtype.element_ty), mask=t < L)
        h = tl.sum(tl.where((rows == BLOCK_L - 1)[:, None], hs, 0.0), axis=0)


@triton.jit
def _scan_backward_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, gy_ptr, states_ptr,
    du_ptr, ddelta_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr,
    L, CH, N, num_tiles,
    su_b, su_l, su_c, sd_b, sd_l, sd_c, sb_b, sb_l, sb_n, sc_b, sc_l, sc_n, sg_b, sg_l, sg_c,
    s_du_b, s_du_l, s_du_c, s_dd_b, s_dd_l, s_dd_c, s_db_b, s_db_l, s_db_n, s_dc_b, s_dc_l, s_dc_n,
    BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
):
    b = tl.program_id(0)
    c = tl.program_id(1)
    rows = tl.arange(0, BLOCK_L)
    n = tl.arange(0, BLOCK_N)
    A = tl.load(A_ptr + c * N + n, mask=n < N, other=0.0).to(tl.float32)
    D = tl.load(D_ptr + c).to(tl.float32)
    g_after = tl.zeros([BLOCK_N], dtype=tl.float32)  # state gradient at the next tile's first token
    dA = tl.zeros([BLOCK_N], dtype=tl.float32)
    dD = tl.zeros([BLOCK_L], dtype=tl.float32)
    for j in range(num_tiles):
        k = num_tiles - 1 - j
        t = k * BLOCK_L + rows
        in_l = t < L
        in_ln = in_l[:, None] & (n[None, :] < N)
        u, delta, B, C = _load_tile(u_ptr, delta_ptr, B_ptr, C_ptr, b, c, t, n, L, N,
                                    su_b, su_l, su_c, sd_b, sd_l, sd_c, sb_b, sb_l, sb_n, sc_b, sc_l, sc_n)
        gy = tl.load(gy_ptr + b * sg_b + t * sg_l + c * sg_c, mask=in_l, other=0.0).to(tl.float32)
        # the forward states of this tile, again, from the state that entered it
        h_in = tl.load(states_ptr + ((b * CH + c) * num_tiles + k) * BLOCK_N + n)
        x = (delta * u)[:, None] * B
        decay_so_far, h_from_zero = tl.associative_scan((tl.exp(delta[:, None] * A[None, :]), x), 0, _compose)
        h = h_from_zero + decay_so_far * h_in[None, :]
        # g[t] = gy[t] C[t] + a[t + 1] g[t + 1]: the next token's decay, across the tile end too
        delta_next = tl.load(delta_ptr + b * sd_b + (t + 1) * sd_l + c * sd_c, mask=t + 1 < L, other=0.0)
        decay_next = tl.exp(delta_next.to(tl.float32)[:, None] * A[None, :])
        decay_to_end, g_from_zero = tl.associative_scan((decay_next, gy[:, None] * C), 0, _compose, reverse=True)
        g = g_from_zero + decay_to_end * g_after[None, :]
        g_after = tl.sum(tl.where((rows == 0)[:, None], g, 0.0), axis=0)

        h_prev_decayed = h - x  # a[t] h[t - 1]
        ddelta = tl.sum(g * (h_prev_decayed * A[None, :] + u[:, None] * B), axis=1)
        du = delta * tl.sum(g * B, axis=1) + D * gy
        tl.store(ddelta_ptr + b * s_dd_b + t * s_dd_l + c * s_dd_c, ddelta, mask=in_l)
        tl.store(du_ptr + b * s_du_b + t * s_du_l + c * s_du_c, du, mask=in_l)
        dA += tl.sum(g * h_prev_decayed * delta[:, None], axis=0)
        dD += gy * u
        tl.atomic_add(dB_ptr + b * s_db_b + t[:, None] * s_db_l + n[None, :] * s_db_n, g * (delta * u)[:, None], mask=in_ln)
        tl.atomic_add(dC_ptr + b * s_dc_b + t[:, None] * s_dc_l + n[None, :] * s_dc_n, gy[:, None] * h, mask=in_ln)
    tl.store(dA_ptr + (b * CH + c) * BLOCK_N + n, dA)
    tl.store(dD_ptr + b * CH + c, tl.sum(dD, axis=0))


def _tile_sizes(length: int, states: int) -> Tuple[int, int]:
    """States padded to a power of two; tiles of at most 2048 elements, no longer than needed."""
    block_n = triton.next_power_of_2(states)
    block_l = max(16, min(triton.next_power_of_2(length), 2048 // block_n))
    return block_l, block_n


def _forward(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor, keep_states: bool
) -> Tuple[torch.Tensor, torch.Tensor]:
    """y, and the state entering each tile when ``keep_states`` (for the backward pass)."""
    batch, length, channels = u.shape
    states = A.shape[1]
    block_l, block_n = _tile_sizes(length, states)
    num_tiles = triton.cdiv(length, block_l)
    A, D = A.float().contiguous(), D.float().contiguous()
    y = torch.empty(u.shape, device=u.device, dtype=u.dtype)
    entering = u.new_empty((batch, channels, num_tiles, block_n) if keep_states else (0,), dtype=torch.float32)
    _scan_forward_kernel[(batch, channels)](
        u, delta, A, B, C, D, y, entering,
        length, channels, states, num_tiles,
        *u.stride(), *delta.stride(), *B.stride(), *C.stride(), *y.stride(),
        SAVE_STATES=keep_states, BLOCK_L=block_l, BLOCK_N=block_n,
    )  # fmt: skip
    return y, entering


def _states_shape(u: torch.Tensor, A: torch.Tensor) -> Tuple[List[int], torch.dtype]:
    block_l, block_n = _tile_sizes(u.shape[1], A.shape[1])
    return [u.shape[0], u.shape[2], triton.cdiv(u.shape[1], block_l), block_n], torch.float32


def _backward(
    grad_y: torch.Tensor,
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    entering: torch.Tensor,
) -> List[torch.Tensor]:
    dtypes = [t.dtype for t in (u, delta, A, B, C, D)]
    batch, length, channels = u.shape
    states = A.shape[1]
    block_l, block_n = _tile_sizes(length, states)
    num_tiles = entering.shape[2]
    A, D = A.float().contiguous(), D.float().contiguous()
    du, ddelta = torch.empty_like(u, dtype=torch.float32), torch.empty_like(delta, dtype=torch.float32)
    dB, dC = torch.zeros_like(B, dtype=torch.float32), torch.zeros_like(C, dtype=torch.float32)
    dA = u.new_empty((batch, channels, block_n), dtype=torch.float32)
    dD = u.new_empty((batch, channels), dtype=torch.float32)
    _scan_backward_kernel[(batch, channels)](
        u, delta, A, B, C, D, grad_y, entering,
        du, ddelta, dA, dB, dC, dD,
        length, channels, states, num_tiles,
        *u.stride(), *delta.stride(), *B.stride(), *C.stride(), *grad_y.stride(),
        *du.stride(), *ddelta.stride(), *dB.stride(), *dC.stride(),
        BLOCK_L=block_l, BLOCK_N=block_n,
    )  # fmt: skip
    grads = (du, ddelta, dA.sum(0)[:, :states], dB, dC, dD.sum(0))
    return [g.to(dtype) for g, dtype in zip(grads, dtypes)]


_scan_operator = scan_operator("triton", _forward, _backward, _states_shape)


def selective_scan_triton(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """Selective scan in one Triton kernel launch (and one for the backward pass); same
    arguments and result as :func:`networks.scan.selective_scan_sequential`, float32 inside.

    ``d_state`` up to 64, any length; CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``.
    float64 inputs (for checks) take the pure-PyTorch scan, which keeps their precision.
    """
    if A.shape[1] > 64:
        raise ValueError(f"the Triton scan takes d_state up to 64, got {A.shape[1]}; use scan_backend='torch'")
    if u.dtype == torch.float64:
        return selective_scan_chunked(u, delta, A, B, C, D)
    return _scan_operator(u, delta, A, B, C, D)
