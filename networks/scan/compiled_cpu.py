"""The selective scan compiled for CPUs: a C++ kernel (``csrc/selective_scan_cpu.cpp``), forward
and hand-written backward, built on first use and cached.

The first use compiles it with :func:`torch.utils.cpp_extension.load` (a C++ compiler and
``ninja`` are needed; the log says when it compiles) into the standard extensions folder
(``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``), under a name that holds a
hash of the source, the build flags, the torch version and install, and the Python version:
later processes load it in well under a second, and any change to one of these builds afresh.
Processes that start together (DDP ranks, DataLoader workers, parallel tests) share one build:
``cpp_extension``'s lock file lets one compile while the others wait. The flags are portable
(the kernel picks AVX2 at run time), so a cached build may be shared between machines.

``ULVM_NO_COMPILE=1`` turns compiling off. When it is off, or there is no compiler, or the
build fails, :func:`compiled_cpu_available` is False (one warning says why, unless turned off)
and the dispatcher runs the pure-PyTorch chunked scan instead.

Inside, the scan runs in float32 (float16/bfloat16 inputs are upcast; float64 stays float64,
for checks) on PyTorch's thread pool, so ``torch.set_num_threads`` governs it (on Linux; on
macOS and Windows it runs on one thread, see ``_BUILDS``).
"""

import hashlib
import logging
import os
import platform
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from ..files import write_atomically
from .ops import scan_operator
from .sequential import upcast

__all__ = [
    "NO_COMPILE_ENV",
    "compiled_cpu_available",
    "selective_scan_cpu",
    "selective_scan_cpu_backward",
    "selective_scan_cpu_forward",
]

logger = logging.getLogger(__name__)

NO_COMPILE_ENV = "ULVM_NO_COMPILE"
SOURCE = Path(__file__).parent / "csrc" / "selective_scan_cpu.cpp"
# -fno-trapping-math lets the compiler vectorise the clamps in exp (results unchanged); no
# -march: the kernel dispatches to AVX2 itself, so the build runs on any CPU of its architecture.
# -fopenmp (Linux): at::parallel_for spreads the tasks over PyTorch's threads only in code
# compiled with OpenMP; without it, it runs them one after the other (the kernel ran on one core,
# whatever torch.set_num_threads said). The extension then needs libgomp.so.1, which PyTorch has
# loaded already (its own copy, same name): one OpenMP runtime, one thread pool. A compiler
# without OpenMP (clang without libomp) gets the one-thread build instead, with a warning.
# Elsewhere the kernel stays on one thread: Apple's clang has no OpenMP, and MSVC's would be a
# second runtime. Each entry: compile flags, link flags; the first that builds is used.
_ONE_THREAD = (["-O3", "-fopenmp-simd", "-fno-trapping-math"], [])
if sys.platform == "win32":
    _BUILDS = [(["/O2"], [])]
elif sys.platform.startswith("linux"):
    _BUILDS = [(["-O3", "-fopenmp", "-fno-trapping-math"], ["-fopenmp"]), _ONE_THREAD]
else:
    _BUILDS = [_ONE_THREAD]
_BUILD_SECONDS = 60  # the build time the log announces: the order of magnitude on a small machine
# The backward pass recomputes the states chunk by chunk from the states the forward pass keeps
# every CHECKPOINT_EVERY tokens: 1/64 of the memory of all states.
CHECKPOINT_EVERY = 64


def _extension_name(flags: List[str]) -> str:
    key = hashlib.sha256()
    for part in (
        SOURCE.read_bytes(),
        " ".join(flags),
        torch.__version__,
        os.path.dirname(torch.__file__),
        sys.version,
        platform.machine(),
    ):
        key.update(part if isinstance(part, bytes) else part.encode())
    return f"ulvm_selective_scan_cpu_{key.hexdigest()[:16]}"


def _build_directory(name: str) -> Path:
    from torch.utils.cpp_extension import get_default_build_root

    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / name


def _fixed_source(build_directory: Path) -> Path:
    """The source, copied into the build folder: the build then depends neither on where this
    package lives (two checkouts share one build) nor on when it was copied (its timestamp is
    fixed, so a copy written again by a process starting later never triggers a rebuild)."""
    target = build_directory / SOURCE.name
    if not target.exists():

        def copy_with_fixed_time(partial: Path) -> None:
            partial.write_bytes(SOURCE.read_bytes())
            os.utime(partial, (1_000_000_000, 1_000_000_000))

        write_atomically(target, copy_with_fixed_time)
    return target


def _why(error: Exception) -> str:
    """The gist of a failed build: the headline and the compiler's first complaint, not the
    echoed command lines."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    headline = lines[0].split(": [")[0]  # "Error building extension 'name'" without ninja's progress
    complaints = [line for line in lines[1:] if "error" in line.lower() or "not found" in line.lower()]
    return f"{headline}: {complaints[0]}" if complaints else headline


def _location(cflags: List[str], ldflags: List[str]) -> Tuple[str, Path]:
    """The extension's name and build folder for these flags."""
    name = _extension_name(cflags + ldflags)
    return name, _build_directory(name)


def _is_built(cflags: List[str], ldflags: List[str]) -> bool:
    name, build_directory = _location(cflags, ldflags)
    return any(build_directory.glob(f"{name}.*"))


def _build(cflags: List[str], ldflags: List[str]) -> None:
    """Builds (once per machine and flags) and loads the kernel; raises when it cannot."""
    from torch.utils import cpp_extension

    name, build_directory = _location(cflags, ldflags)
    if not _is_built(cflags, ldflags):
        logger.warning(
            "compiling the CPU selective scan once, about %d s (cached in %s; %s=1 skips it)",
            _BUILD_SECONDS,
            build_directory,
            NO_COMPILE_ENV,
        )
    start = time.perf_counter()
    cpp_extension.load(
        name,
        [str(_fixed_source(build_directory))],
        extra_cflags=cflags,
        extra_ldflags=ldflags,
        build_directory=str(build_directory),
        is_python_module=False,
        verbose=False,
    )
    logger.debug("CPU selective scan loaded in %.1f s", time.perf_counter() - start)


def _load() -> bool:
    """Builds (once per machine) and loads the kernel; False, after one warning, when it cannot."""
    if os.environ.get(NO_COMPILE_ENV, "0") == "1":
        logger.info("%s=1: the compiled CPU selective scan is off; the chunked PyTorch scan runs", NO_COMPILE_ENV)
        return False
    # A build made before is loaded first: where the OpenMP build failed once (a whole compile
    # before the link fails), later processes load the one-thread build instead of failing again.
    builds = sorted(_BUILDS, key=lambda build: not _is_built(*build))
    failures: List[Exception] = []
    for build in builds:
        try:
            _build(*build)
        except Exception as error:  # no compiler, no ninja, no OpenMP, a failed build, an unwritable cache
            logger.debug("building the CPU selective scan with %s failed", build[0], exc_info=True)
            failures.append(error)
            continue
        if build is not _BUILDS[0]:
            why = _why(failures[0]) if failures else "its build with OpenMP failed here before"
            warnings.warn(
                f"the compiled CPU selective scan was built without OpenMP ({why}), so it runs on one thread; "
                f"with a compiler that has OpenMP (g++), delete {_location(*build)[1]} to build it again.",
                RuntimeWarning,
                stacklevel=2,
            )
        return True
    warnings.warn(
        f"the compiled CPU selective scan is unavailable ({_why(failures[-1])}); the pure-PyTorch "
        f"chunked scan runs instead (same results, slower). It needs a C++ compiler and ninja; "
        f"{NO_COMPILE_ENV}=1 silences this.",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


_loaded: Dict[str, bool] = {}
# threads that run the network at once (the bundle's CPU lanes) must not build or load it twice
_load_lock = threading.Lock()


def compiled_cpu_available() -> bool:
    """True when the compiled CPU scan runs here (it is built on the first call)."""
    if "kernel" not in _loaded:
        with _load_lock:
            if "kernel" not in _loaded:
                _loaded["kernel"] = _load()
    return _loaded["kernel"]


def compiled_cpu_loaded() -> bool:
    """True when the kernel is loaded already; builds nothing (for torch.compile's tracing)."""
    return _loaded.get("kernel", False)


def selective_scan_cpu_forward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    checkpoint_every: int = 0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The kernel's forward pass on arguments of one dtype, float32 or float64 (see the layout in
    the source): ``y`` and, when ``checkpoint_every > 0``, the states entering every
    ``checkpoint_every``-th token (batch, chunks, channels, states) for the backward pass."""
    return torch.ops.ulvm_scan_cpu.forward(u, delta, A, B, C, D, checkpoint_every)


def selective_scan_cpu_backward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    checkpoints: torch.Tensor,
    grad_y: torch.Tensor,
    checkpoint_every: int,
) -> Tuple[torch.Tensor, ...]:
    """The gradients of ``u, delta, A, B, C, D`` from ``grad_y`` and the forward's checkpoints."""
    return tuple(torch.ops.ulvm_scan_cpu.backward(u, delta, A, B, C, D, checkpoints, grad_y, checkpoint_every))


def _kernel_arguments(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> Tuple[torch.Tensor, ...]:
    """One dtype (at least float32), and the layout the kernel reads: A and D contiguous, the
    states of B and C contiguous (u and delta may have any strides)."""
    u, delta, A, B, C, D = upcast([u, delta, A, B, C, D])
    B = B if B.stride(-1) == 1 else B.contiguous()
    C = C if C.stride(-1) == 1 else C.contiguous()
    return u, delta, A.contiguous(), B, C, D.contiguous()


def _forward(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor, keep_states: bool
) -> Tuple[torch.Tensor, torch.Tensor]:
    y, checkpoints = selective_scan_cpu_forward(
        *_kernel_arguments(u, delta, A, B, C, D), checkpoint_every=CHECKPOINT_EVERY if keep_states else 0
    )
    return y.to(u.dtype), checkpoints if keep_states else y.new_empty(0)


def _states_shape(u: torch.Tensor, A: torch.Tensor) -> Tuple[List[int], torch.dtype]:
    chunks = (u.shape[1] + CHECKPOINT_EVERY - 1) // CHECKPOINT_EVERY
    return [u.shape[0], chunks, u.shape[2], A.shape[1]], torch.promote_types(u.dtype, torch.float32)


def _backward(
    grad_y: torch.Tensor,
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    checkpoints: torch.Tensor,
) -> List[torch.Tensor]:
    args = _kernel_arguments(u, delta, A, B, C, D)
    grads = selective_scan_cpu_backward(*args, checkpoints, grad_y.to(args[0].dtype), CHECKPOINT_EVERY)
    return [g.to(t.dtype) for g, t in zip(grads, (u, delta, A, B, C, D))]


_scan_operator = scan_operator("cpu", _forward, _backward, _states_shape)


def selective_scan_cpu(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor
) -> torch.Tensor:
    """The selective scan by the compiled CPU kernel; same arguments and result as
    :func:`networks.scan.selective_scan_sequential`, for CPU tensors, once
    :func:`compiled_cpu_available` has returned True.

    Example:
        >>> u, delta = torch.randn(2, 100, 12), torch.rand(2, 100, 12)
        >>> A, D = -torch.rand(12, 16), torch.ones(12)
        >>> B, C = torch.randn(2, 100, 16), torch.randn(2, 100, 16)
        >>> compiled_cpu_available() and selective_scan_cpu(u, delta, A, B, C, D).shape
        torch.Size([2, 100, 12])
    """
    return _scan_operator(u, delta, A, B, C, D)
