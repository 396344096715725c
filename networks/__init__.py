"""UltraLight VM-UNet for PyTorch and MONAI, on any device.

>>> from networks import UltraLightVMUNet
>>> net = UltraLightVMUNet(spatial_dims=2, in_channels=3, out_channels=1)

The names below are imported at their first use, so that the plain-Python module
:mod:`networks.files` imports without PyTorch (the bundle's ONNX segmenter needs it so).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of this package that defines it
_HOMES = {
    "UltraLightVMUNet": "ultralight_vmunet",
    "PVMLayer": "pvm",
    "Mamba": "mamba",
    "SCAN_BACKENDS": "scan",
    "SCAttBridge": "bridge",
    "SpatialAttBridge": "bridge",
    "ChannelAttBridge": "bridge",
    "selective_scan": "scan",
    "selective_scan_chunked": "scan",
    "selective_scan_sequential": "scan",
    "cuda_kernels_available": "scan",
    "init_reference_weights": "weights",
    "load_reference_weights": "weights",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
