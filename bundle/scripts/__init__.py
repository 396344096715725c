"""Python helpers of the UltraLight VM-UNet bundle, referenced from ``configs/*.yaml``.

The network itself is imported as the top-level package ``networks``: in the repository it
is the installed project, in a standalone bundle the copy vendored at the bundle root.
"""

from . import background, caching, checkpoints, console, datalist, image_io, inferers, resampling, writers

__all__ = ["background", "caching", "checkpoints", "console", "datalist", "image_io", "inferers", "resampling", "writers"]
