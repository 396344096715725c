"""Selective-scan backends of the Mamba block, and the one function that picks among them.

Every backend computes, for each sequence, channel ``c`` and state ``n``, the recurrence

    h[t] = exp(delta[t, c] * A[c, n]) * h[t - 1] + delta[t, c] * B[t, n] * u[t, c]
    y[t, c] = sum_n C[t, n] * h[t, n] + D[c] * u[t, c]

from ``h[-1] = 0``, on token-major tensors: ``u``, ``delta`` (batch, length, channels), ``A``
(channels, states), ``B``, ``C`` (batch, length, states), ``D`` (channels,); ``y`` comes back
in the dtype of ``u``, scanned in float32 (float64 stays float64 where a backend allows it).

| backend        | module               | runs on                                                |
| -------------- | -------------------- | ------------------------------------------------------ |
| ``sequential`` | ``sequential``       | anything: one step per token, the tests' reference      |
| ``torch``      | ``chunked``          | anything: pure PyTorch; TorchScript, tracing and ONNX   |
| ``cpu``        | ``compiled_cpu``     | CPUs: C++ compiled on first use; ``torch`` if it cannot be built |
| ``triton``     | ``triton_scan``      | CUDA GPUs, compiled at run time (CPU with TRITON_INTERPRET=1) |
| ``cuda``       | ``mamba_ssm_kernels``| CUDA, when the reference release's ``mamba-ssm`` is installed |

Exporters use plain tensor code: ``export`` (the scan unrolled into a short graph of whole-tensor
operators, for TorchScript, tracing and ``torch.export``) and ``onnx_graph`` (the same scan
written in ONNX operators, for :func:`networks.onnx_export.export_onnx`).

``auto`` takes, for CUDA tensors, ``cuda`` when mamba-ssm imports, else ``triton`` when Triton
imports, else ``torch``; for CPU tensors ``cpu`` when it builds (unless ``ULVM_NO_COMPILE=1``),
else ``torch``; for other devices ``torch``. The first call of each backend logs it.
"""

import importlib.util
import logging
import os
from typing import Callable, Set

import torch

from .chunked import selective_scan_chunked
from .compiled_cpu import compiled_cpu_available, compiled_cpu_loaded, selective_scan_cpu
from .export import recording_one_operator, scan_export
from .mamba_ssm_kernels import cuda_kernels_available
from .sequential import selective_scan_sequential

# looked up once: torch.compile traces the dispatcher, and cannot trace a package search
_TRITON_INSTALLED = importlib.util.find_spec("triton") is not None

__all__ = [
    "SCAN_BACKENDS",
    "resolve_backend",
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_sequential",
    "compiled_cpu_available",
    "cuda_kernels_available",
    "triton_available",
]

logger = logging.getLogger(__name__)

SCAN_BACKENDS = ("auto", "torch", "triton", "cuda", "sequential", "cpu")

_announced: Set[str] = set()


def triton_available() -> bool:
    """True when Triton can run the scan here: a CUDA GPU and the ``triton`` package (it ships
    with CUDA builds of PyTorch)."""
    return torch.cuda.is_available() and _TRITON_INSTALLED


def triton_interpreting() -> bool:
    """True when Triton runs kernels on the CPU (``TRITON_INTERPRET=1``, for tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1" and _TRITON_INSTALLED


def check_backend(backend: str) -> None:
    """Refuses an unknown backend, or one that cannot run on this machine, with what to do."""
    if backend not in SCAN_BACKENDS:
        raise ValueError(f"scan_backend must be one of {SCAN_BACKENDS}, got {backend!r}")
    if backend == "cuda" and not cuda_kernels_available():
        raise ImportError(
            "scan_backend='cuda' needs the mamba-ssm CUDA kernels (pip install 'ultralight-vmunet[cuda]' "
            "on a machine with CUDA); scan_backend='auto' runs anywhere"
        )
    if backend == "triton" and not (triton_available() or triton_interpreting()):
        raise ImportError(
            "scan_backend='triton' needs a CUDA GPU and the triton package (it comes with CUDA builds of "
            "PyTorch; on a CPU only the interpreter runs it: TRITON_INTERPRET=1); scan_backend='auto' runs anywhere"
        )
    if backend == "triton" or (backend == "auto" and triton_available()):
        _scan_function("triton")  # imported now, not first inside a torch.compile trace


# Under torch.compile the kernel is built (or loaded) while dynamo traces, as in eager mode:
# asking only "is it loaded yet" would let a network compiled before its first eager call
# trace the slower pure-PyTorch scan without a word.
_compiled_cpu_at_trace_time = torch.compiler.assume_constant_result(compiled_cpu_available)


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend that runs for tensors on ``device`` when ``backend`` is asked for."""
    if backend == "cuda" and device.type != "cuda":
        raise ValueError(f"scan_backend='cuda' runs on CUDA tensors only, got one on {device}; use 'auto'")
    if backend == "triton" and device.type != "cuda" and not triton_interpreting():
        raise ValueError(
            f"scan_backend='triton' runs on CUDA tensors (or on the CPU under TRITON_INTERPRET=1, for tests), "
            f"got one on {device}; use 'auto'"
        )
    if backend == "cpu" and device.type != "cpu":
        raise ValueError(f"scan_backend='cpu' runs on CPU tensors only, got one on {device}; use 'auto'")
    if backend in ("auto", "cpu") and device.type == "cpu":
        if torch.jit.is_tracing():  # a trace records operators only: nothing is built inside one
            return "cpu" if compiled_cpu_loaded() else "torch"
        if torch.compiler.is_compiling():  # dynamo calls it once, outside the graph
            return "cpu" if _compiled_cpu_at_trace_time() else "torch"
        return "cpu" if compiled_cpu_available() else "torch"
    if backend != "auto":
        return backend
    if device.type == "cuda":
        if cuda_kernels_available():
            return "cuda"
        if triton_available():
            return "triton"
    return "torch"


def _scan_function(backend: str) -> Callable[..., torch.Tensor]:
    if backend == "sequential":
        return selective_scan_sequential
    if backend == "triton":
        from .triton_scan import selective_scan_triton  # imported on use: Triton is optional

        return selective_scan_triton
    if backend == "cpu":
        return selective_scan_cpu
    return selective_scan_chunked


def announce(backend: str) -> None:
    """Logs the backend the first time it runs in this process."""
    if backend not in _announced:
        _announced.add(backend)
        logger.info("selective scan backend: %s", backend)


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    backend: str = "auto",
) -> torch.Tensor:
    """The selective scan by ``backend`` (any of :data:`SCAN_BACKENDS` but ``cuda``, whose
    kernels the Mamba block calls itself). Each backend is one custom operator with its backward
    pass, so ``torch.compile(fullgraph=True)`` traces through it; tracing, scripting and export
    take the plain-tensor ``torch`` path, which every exporter understands (or, for the ONNX
    exporter, one operator: :func:`networks.scan.export.scan_as_one_operator`).

    Example:
        >>> u, delta = torch.randn(2, 100, 12), torch.rand(2, 100, 12)
        >>> A, D = -torch.rand(12, 16), torch.ones(12)
        >>> B, C = torch.randn(2, 100, 16), torch.randn(2, 100, 16)
        >>> selective_scan(u, delta, A, B, C, D).shape
        torch.Size([2, 100, 12])
    """
    if recording_one_operator():
        return scan_export(u, delta, A, B, C, D)
    name = resolve_backend(backend, u.device)
    if torch.jit.is_tracing() or torch.compiler.is_exporting():
        name = "sequential" if name == "sequential" else "torch"
    if not torch.compiler.is_compiling():
        announce(name)
    return _scan_function(name)(u, delta, A, B, C, D)
