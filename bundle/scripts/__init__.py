"""Python helpers of the UltraLight VM-UNet bundle, referenced from ``configs/*.yaml``.

The network itself is imported as the top-level package ``networks``: in the repository it
is the installed project, in a standalone bundle the copy vendored at the bundle root.
"""

import importlib
from types import ModuleType

__all__ = [
    "atomic",
    "background",
    "caching",
    "checkpoints",
    "console",
    "datalist",
    "errors",
    "image_files",
    "image_io",
    "inferers",
    "isic",
    "nonfinite",
    "output_lock",
    "resampling",
    "setting_keys",
    "setting_rules",
    "setting_types",
    "settings",
    "writers",
]


def __getattr__(name: str) -> ModuleType:
    """Imports a helper module at its first use (``scripts.settings`` in a config expression), so
    that the plain-Python ones (``image_files``, ``atomic``, ``errors``) import without PyTorch
    or MONAI, as the ONNX segmenter needs."""
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
