"""A seeded generator of dermoscopy-like images with exact lesion masks, for demos and tests.

Each image shows textured, unevenly lit skin with one irregular pigmented
lesion of varied size, colour, contrast and border sharpness; some images have
hairs (which may cross the lesion) and the dark circular field of view of a
dermoscope. The mask is the lesion only: hairs do not change it, and the part
of a lesion outside the field of view is not marked.

Image ``i`` depends only on the seed, ``i`` and the size, never on how many
images are made, and the same seed gives byte-identical PNG files on the same
platform (NumPy's floating point may differ in the last bit across CPUs).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from prepare.errors import PrepareError
from prepare.layouts import FOLDER_IMAGES, FOLDER_MASKS, Pair

logger = logging.getLogger(__name__)

FILE_PREFIX = "synthetic_"
MIN_SIZE = 32
SKIN_LIGHT = np.array([238.0, 200.0, 176.0])
SKIN_DARK = np.array([176.0, 122.0, 90.0])
# Light brown, brown, dark brown, blue-black, reddish: the hues of pigmented lesions.
LESION_PALETTE = np.array(
    [[172.0, 112.0, 74.0], [126.0, 76.0, 48.0], [78.0, 48.0, 34.0], [62.0, 54.0, 66.0], [150.0, 74.0, 66.0]]
)
LUMA = np.array([0.299, 0.587, 0.114])
HAIR_PROBABILITY = 0.35
FIELD_OF_VIEW_PROBABILITY = 0.3


def smooth_noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 3) -> np.ndarray:
    """A size x size field of smooth noise with about unit spread; ``cells`` sets the coarsest scale.

    Bicubic upsampling of small random grids stands in for Perlin noise, which
    would need a dependency.
    """
    field = np.zeros((size, size), np.float32)
    for octave in range(octaves):
        grid = rng.standard_normal((cells * 2**octave + 1,) * 2).astype(np.float32)
        field += np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC)) / 2**octave
    return field / math.sqrt(sum(4.0**-o for o in range(octaves)))


def skin(rng: np.random.Generator, size: int) -> np.ndarray:
    """Skin of a random tone with fine texture and patches of redness, as float RGB."""
    tone = (SKIN_LIGHT + rng.uniform() * (SKIN_DARK - SKIN_LIGHT)) * rng.normal(1.0, 0.03, 3)
    texture = 1 + rng.uniform(0.02, 0.06) * smooth_noise(rng, size, cells=max(2, size // 12), octaves=2)
    redness = rng.uniform(0.0, 0.1) * np.clip(smooth_noise(rng, size, cells=3), 0, None)
    image = tone * texture[..., None]
    image[..., 1:] *= (1 - redness)[..., None]
    return image


def lesion_shape(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed depth inside an irregular blob (positive inside, in image widths) and relative radius.

    The outline is an ellipse modulated by a few angular harmonics, roughened by
    smooth noise, so borders range from round to lobed and jagged.
    """
    cx, cy = rng.uniform(0.3, 0.7, 2)
    radius = rng.uniform(0.09, 0.33)
    aspect, angle = rng.uniform(0.65, 1.0), rng.uniform(0, math.pi)
    dx, dy = x - cx, y - cy
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = (dy * math.cos(angle) - dx * math.sin(angle)) / aspect
    theta, distance = np.arctan2(v, u), np.hypot(u, v)
    harmonics = np.arange(2, 8)
    amplitudes = rng.uniform(0, 0.22, harmonics.size) / harmonics**0.7
    phases = rng.uniform(0, 2 * math.pi, harmonics.size)
    lobes = (amplitudes * np.cos(theta[..., None] * harmonics + phases)).sum(-1)
    outline = radius * np.maximum(1 + lobes, 0.5)
    rough = 0.1 * radius * smooth_noise(rng, x.shape[0], cells=12, octaves=2)
    return outline - distance - rough, distance / outline


def lesion_colour(rng: np.random.Generator, skin_image: np.ndarray, relative_radius: np.ndarray) -> np.ndarray:
    """Lesion pigment as float RGB: a palette mix at a random contrast to the skin, with inner structure."""
    base = rng.dirichlet(np.full(len(LESION_PALETTE), 0.5)) @ LESION_PALETTE
    skin_luma = float(LUMA @ skin_image.reshape(-1, 3).mean(0))
    # Choose the contrast directly, so that some lesions are faint but none vanish.
    contrast = rng.uniform(0.2, 0.65)
    base_contrast = 1 - float(LUMA @ base) / skin_luma
    if base_contrast > contrast:
        fade = 1 - contrast / base_contrast
        colour = (1 - fade) * base + fade * skin_image
    else:
        colour = base * (1 - contrast) * skin_luma / float(LUMA @ base) * np.ones_like(skin_image)
    size = skin_image.shape[0]
    darker_core = 1 - rng.uniform(0, 0.35) * np.clip(1 - relative_radius, 0, 1)
    blotches = 1 + rng.uniform(0.05, 0.2) * smooth_noise(rng, size, cells=5)
    dots = smooth_noise(rng, size, cells=max(2, size // 7), octaves=1) > rng.uniform(1.0, 2.5)
    shade = darker_core * blotches * np.where(dots, rng.uniform(0.6, 0.9), 1.0)
    return colour * shade[..., None]


def lighting(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Multiplicative illumination: a tilt across the image and a fall-off towards its corners."""
    angle = rng.uniform(0, 2 * math.pi)
    tilt = rng.uniform(0, 0.3) * ((x - 0.5) * math.cos(angle) + (y - 0.5) * math.sin(angle))
    falloff = rng.uniform(0, 0.6) * ((x - 0.5) ** 2 + (y - 0.5) ** 2)
    return 1 + tilt - falloff


def hair_coverage(rng: np.random.Generator, size: int) -> np.ndarray:
    """Coverage in [0, 1] of a few long, curved, thin hairs.

    Drawn at twice the size and averaged down, so sub-pixel hairs come out
    anti-aliased rather than as jagged lines.
    """
    scale = 2
    layer = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(layer)
    t = np.linspace(0, 1, 32)[:, None]
    for _ in range(rng.integers(1, 12)):
        start, end = rng.uniform(-0.1, 1.1, (2, 2))
        bend = rng.uniform(0, 1, 2)
        curve = ((1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t**2 * end) * size * scale
        width = max(1, round(rng.uniform(0.5, 1.6) * scale * size / 256))
        draw.line([tuple(p) for p in curve.tolist()], fill=255, width=width, joint="curve")
    return np.asarray(layer.resize((size, size), Image.Resampling.BOX), np.float32) / 255


def field_of_view(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Transmission of a dermoscope's circular field stop: 1 inside, falling softly to 0 outside."""
    cx, cy = 0.5 + rng.normal(0, 0.02, 2)
    radius, edge = rng.uniform(0.46, 0.62), rng.uniform(0.01, 0.04)
    return 0.5 * (1 - np.tanh((np.hypot(x - cx, y - cy) - radius) / edge))


def render_case(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One RGB image (uint8, size x size x 3) and its lesion mask (uint8, 0 or 255)."""
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    background = skin(rng, size)
    depth, relative_radius = lesion_shape(rng, x, y)
    border_px = rng.uniform(0.6, 5.0) * size / 256
    # A logistic edge whose midpoint is the outline, so the mask is exactly where the lesion dominates.
    lesion_alpha = 0.5 * (1 + np.tanh(depth * size / (2 * border_px)))
    alpha = lesion_alpha[..., None]
    image = background * (1 - alpha) + lesion_colour(rng, background, relative_radius) * alpha
    image *= lighting(rng, x, y)[..., None]
    mask = depth > 0
    if rng.uniform() < HAIR_PROBABILITY:
        hair = hair_coverage(rng, size)[..., None] * rng.uniform(0.7, 1.0)
        image = image * (1 - hair) + rng.uniform(15, 60) * np.array([1.0, 0.9, 0.85]) * hair
    if rng.uniform() < FIELD_OF_VIEW_PROBABILITY:
        transmission = field_of_view(rng, x, y)
        image = image * transmission[..., None] + rng.uniform(0, 15) * (1 - transmission[..., None])
        mask &= transmission > 0.5
    image += rng.normal(0, rng.uniform(1.5, 4.0), image.shape)
    pixels = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    pixels = pixels.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8) * size / 256))
    return np.asarray(pixels), mask.astype(np.uint8) * 255


def clear_folders(folders: list[Path], overwrite: bool) -> None:
    """Refuse folders that already hold files unless ``overwrite``; then drop earlier synthetic files.

    Only files this generator names are removed, so a stale, larger set does not
    linger next to a new one, while anything else the user keeps there survives.
    """
    for folder in folders:
        if not folder.is_dir():
            continue
        if not overwrite and any(folder.iterdir()):
            raise PrepareError(f"{folder} already holds files; pass --overwrite to replace synthetic images")
        for stale in folder.glob(f"{FILE_PREFIX}*.png"):
            stale.unlink()


def write_synthetic(out: Path, num_images: int, size: int, seed: int, overwrite: bool = False) -> list[Pair]:
    """Generate ``num_images`` pairs into ``out/images`` and ``out/masks`` and return them."""
    if num_images < 1:
        raise PrepareError(f"--num-images must be at least 1, got {num_images}")
    if size < MIN_SIZE:
        raise PrepareError(f"--size must be at least {MIN_SIZE} pixels, got {size}")
    image_dir, mask_dir = out / FOLDER_IMAGES, out / FOLDER_MASKS
    clear_folders([image_dir, mask_dir], overwrite)
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(num_images - 1)))
    pairs = []
    for index in tqdm(range(num_images), desc="generating", unit="image", disable=None):
        image, mask = render_case(size, np.random.default_rng([seed, index]))
        name = f"{FILE_PREFIX}{index:0{digits}d}.png"
        Image.fromarray(image).save(image_dir / name)
        Image.fromarray(mask).save(mask_dir / name)
        pairs.append(Pair(image_dir / name, mask_dir / name))
    logger.info("generated %d images of %dx%d in %s", num_images, size, size, out)
    return pairs
