"""Python helpers of the UltraLight VM-UNet bundle, referenced from ``configs/*.yaml``.

The network itself is imported as the top-level package ``networks``: in the repository it
is the installed project, in a standalone bundle the copy vendored at the bundle root.
"""

from . import (
    atomic,
    background,
    caching,
    checkpoints,
    console,
    datalist,
    errors,
    image_io,
    inferers,
    isic,
    nonfinite,
    output_lock,
    resampling,
    settings,
    writers,
)

__all__ = [
    "atomic",
    "background",
    "caching",
    "checkpoints",
    "console",
    "datalist",
    "errors",
    "image_io",
    "inferers",
    "isic",
    "nonfinite",
    "output_lock",
    "resampling",
    "settings",
    "writers",
]
