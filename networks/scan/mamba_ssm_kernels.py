"""The reference release's CUDA kernels, ``mamba-ssm`` and ``causal-conv1d`` (optional).

Both packages only build and import where CUDA does; everything here degrades to "not
available" anywhere else, and another backend takes over. The Mamba block calls them itself
(``Mamba._forward_cuda``): they fuse the convolution and the gating with the scan.
"""

import logging
from typing import Callable, Optional

logger = logging.getLogger(__name__)


def _import_selective_scan() -> Optional[Callable]:
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception as err:  # ImportError, or undefined symbols of a mismatched CUDA build
        logger.debug("mamba-ssm kernels unavailable: %s", err)
        return None
    return selective_scan_fn


def _import_causal_conv1d() -> Optional[Callable]:
    try:
        from causal_conv1d import causal_conv1d_fn
    except Exception as err:
        logger.debug("causal-conv1d kernel unavailable: %s", err)
        return None
    return causal_conv1d_fn


selective_scan_fn = _import_selective_scan()
causal_conv1d_fn = _import_causal_conv1d()


def cuda_kernels_available() -> bool:
    """True when the ``mamba-ssm`` selective-scan kernel imports (``pip install .[cuda]``)."""
    return selective_scan_fn is not None
