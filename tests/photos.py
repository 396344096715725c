"""Folders of images made the way real collections come, for the tests of every path that reads
them (the bundle, the ONNX segmenter, the browser page, ``prepare``): awkward but good files,
files that cannot be used, and phone photos with each EXIF orientation."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112
# how a viewer turns the stored pixels for display, per EXIF orientation (as the EXIF standard
# and Pillow's ImageOps.exif_transpose define it); the tests store the inverse
DISPLAY_TURN = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
INVERSE_TURN = {**DISPLAY_TURN, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
# the bad files of a real folder and the kind of problem each must be named under
BAD_FILES = {
    "huge.png": "images too large to decode",
    "empty.png": "files that are not images",
    "notes.png": "files that are not images",
    "half.jpg": "truncated or corrupt images",
}
GOOD_FILES = ("good.png", "cmyk.jpg", "deep.tif", "palette.png", "dot.png", "strip.png", "phone.jpg")


def displayed_photo(height: int = 96, width: int = 128) -> Image.Image:
    """An RGB "photo" as a viewer shows it: skin-coloured, with a dark lesion off the centre and
    a bright mark in one corner, so that every turn or mirror of it differs. Flat 16x16 blocks
    come through JPEG compression almost unchanged in any orientation."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = (214, 160, 140)
    pixels[height // 6 : height // 2, width // 8 : width // 2] = (70, 40, 30)
    pixels[:16, -16:] = (255, 255, 255)
    return Image.fromarray(pixels)


def save_with_orientation(picture: Image.Image, path: Path, orientation: int) -> Path:
    """Saves ``picture`` (as it is to be displayed) as a JPEG whose stored pixels a viewer turns
    by ``orientation`` (1-8) to show ``picture``, as a phone writes it."""
    stored = picture if orientation == 1 else picture.transpose(INVERSE_TURN[orientation])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored.save(path, quality=100, subsampling=0, exif=exif.tobytes())
    return path


def orientation_folder(folder: Path) -> dict[int, Path]:
    """``folder`` with ``exif_<o>.jpg`` for each EXIF orientation 1-8, all displaying the same
    photo, and ``plain.png``, that photo without a tag; returns orientation -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = displayed_photo()
    picture.save(folder / "plain.png")
    return {o: save_with_orientation(picture, folder / f"exif_{o}.jpg", o) for o in range(1, 9)}


def png_claiming_size(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` pixels (its data is a few bytes)."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    # IHDR starts at byte 8: length (4), type (4), width (4), height (4), ..., CRC after 13 bytes
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def real_folder(folder: Path) -> Path:
    """``folder`` holding :data:`GOOD_FILES` (CMYK, 16-bit, palette, 1x1, a 10x5000 strip, a
    phone photo with EXIF orientation 6) and :data:`BAD_FILES`."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = displayed_photo()
    photo.save(folder / "good.png")
    photo.convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257).save(folder / "deep.tif")
    photo.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    Image.new("RGB", (1, 1), (90, 60, 50)).save(folder / "dot.png")
    photo.resize((10, 5000)).save(folder / "strip.png")
    save_with_orientation(photo, folder / "phone.jpg", 6)
    png_claiming_size(folder / "huge.png", 60000, 60000)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("shopping list\n")
    photo.save(folder / "whole.jpg", quality=95)
    whole = (folder / "whole.jpg").read_bytes()
    (folder / "half.jpg").write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    (folder / "whole.jpg").unlink()
    return folder
