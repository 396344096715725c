"""Lets the Triton scan's tests run on a CPU, in Triton's interpreter.

Without a CUDA GPU ``conftest.py`` sets ``TRITON_INTERPRET=1`` before anything imports Triton,
so the very kernels a GPU compiles run as NumPy code. The interpreter runs ``tl.associative_scan``
one element at a time in Python (half a millisecond each: minutes for one small network); here
it runs as a Hillis-Steele scan, log2(n) calls of the kernel's own combine function on whole
arrays, which gives the same prefix results up to float rounding.
"""

import numpy as np
import torch

ON_GPU = torch.cuda.is_available()


def _doubling_scan(self, inputs):
    """``ScanOps.generic_scan`` of the interpreter: out[i] = combine(out[i - shift], out[i]) for
    shifts 1, 2, 4, ... (block sizes are powers of two, so whole arrays keep their shape)."""
    axis = self.axis
    out = [np.array(arg.handle.data, copy=True) for arg in inputs]
    dtypes = [arg.dtype for arg in inputs]
    n = out[0].shape[axis]
    position = np.arange(n).reshape([-1 if a == axis else 1 for a in range(out[0].ndim)])
    shift = 1
    while shift < n:
        earlier = [self.to_tensor(np.roll(o, shift, axis), d) for o, d in zip(out, dtypes)]
        later = [self.to_tensor(o, d) for o, d in zip(out, dtypes)]
        combined = self.combine_fn.fn(*earlier, *later)
        combined = combined if isinstance(combined, tuple) else (combined,)
        out = [np.where(position >= shift, c.handle.data, o) for o, c in zip(out, combined)]
        shift *= 2
    return [self.to_tensor(o, d) for o, d in zip(out, dtypes)]


if not ON_GPU:
    try:
        from triton.runtime import interpreter
    except ImportError:  # no triton: the tests that need it skip
        pass
    else:
        interpreter.ScanOps.generic_scan = _doubling_scan
