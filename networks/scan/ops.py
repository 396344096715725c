"""Scan backends as PyTorch custom operators (``torch.library``), with their backward passes.

A backend gives two functions:

* ``forward(u, delta, A, B, C, D, keep_states) -> (y, states)``: ``states`` is whatever its
  backward pass needs (an empty tensor when ``keep_states`` is false, for inference);
* ``backward(grad_y, u, delta, A, B, C, D, states) -> (du, ddelta, dA, dB, dC, dD)``, each
  in the dtype of its input;

and ``states_shape(u, A) -> (shape, dtype)``, so that ``torch.compile`` can trace both as
opaque operators without running them (their "fake" implementations). Registered this way the
scan is one node for autograd in eager mode and for ``torch.compile(fullgraph=True)`` alike:
one path for both, no graph break.
"""

from typing import Callable, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["scan_operator"]

Forward = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, bool], Tuple[Tensor, Tensor]]
Backward = Callable[..., Sequence[Tensor]]
StatesShape = Callable[[Tensor, Tensor], Tuple[Sequence[int], torch.dtype]]


def scan_operator(name: str, forward: Forward, backward: Backward, states_shape: StatesShape) -> Callable[..., Tensor]:
    """Registers ``ulvmunet::scan_<name>`` and its backward operator; returns the scan function
    (token-major arguments, as :func:`networks.scan.selective_scan`)."""

    @torch.library.custom_op(f"ulvmunet::scan_{name}", mutates_args=())
    def scan_forward(
        u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, keep_states: bool
    ) -> Tuple[Tensor, Tensor]:
        return forward(u, delta, A, B, C, D, keep_states)

    @scan_forward.register_fake
    def _(u, delta, A, B, C, D, keep_states):
        shape, dtype = states_shape(u, A) if keep_states else ((0,), torch.float32)
        return u.new_empty(u.shape), u.new_empty(shape, dtype=dtype)

    @torch.library.custom_op(f"ulvmunet::scan_{name}_backward", mutates_args=())
    def scan_backward(
        grad_y: Tensor, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, states: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        return tuple(g.contiguous() for g in backward(grad_y, u, delta, A, B, C, D, states))

    @scan_backward.register_fake
    def _(grad_y, u, delta, A, B, C, D, states):
        return tuple(t.new_empty(t.shape) for t in (u, delta, A, B, C, D))

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:6], output[1])

    def differentiate(ctx, grad_y, grad_states):
        return (*scan_backward(grad_y, *ctx.saved_tensors), None)

    scan_forward.register_autograd(differentiate, setup_context=setup_context)

    def scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor) -> Tensor:
        keep_states = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C, D))
        if not keep_states and not torch.compiler.is_compiling():
            # eager inference needs neither autograd nor tracing: the kernel itself. The
            # operator's first call imports torch._dynamo, which would lengthen every start.
            return forward(u, delta, A, B, C, D, False)[0]
        return scan_forward(u, delta, A, B, C, D, keep_states)[0]

    return scan
