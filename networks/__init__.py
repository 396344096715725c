"""UltraLight VM-UNet for PyTorch and MONAI, on any device.

>>> from networks import UltraLightVMUNet
>>> net = UltraLightVMUNet(spatial_dims=2, in_channels=3, out_channels=1)
"""

from .bridge import ChannelAttBridge, SCAttBridge, SpatialAttBridge
from .mamba import Mamba
from .pvm import PVMLayer
from .scan import SCAN_BACKENDS, cuda_kernels_available, selective_scan, selective_scan_chunked, selective_scan_sequential
from .ultralight_vmunet import UltraLightVMUNet
from .weights import init_reference_weights, load_reference_weights

__all__ = [
    "UltraLightVMUNet",
    "PVMLayer",
    "Mamba",
    "SCAN_BACKENDS",
    "SCAttBridge",
    "SpatialAttBridge",
    "ChannelAttBridge",
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_sequential",
    "cuda_kernels_available",
    "init_reference_weights",
    "load_reference_weights",
]
