"""A folder of real photos, as it comes, through the bundle's inference and the ONNX segmenter:
awkward but good files segmented, every unusable file named in one message before any work,
only complete outputs, and masks in the orientation viewers display (EXIF 1-8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from commands import BUNDLE, INFER, PY, bundle, child_env, run
from photos import BAD_FILES, GOOD_FILES, displayed_photo, orientation_folder, real_folder, save_with_orientation

ONNX_SEGMENT = str(BUNDLE / "commands" / "onnx_segment.py")


def assert_bad_files_named(message: str, folder: Path) -> None:
    """One message: the count, then each bad file under its kind."""
    assert f"{len(BAD_FILES)} of {len(BAD_FILES) + len(GOOD_FILES) + 9} images in {folder}" in message
    for name, kind in BAD_FILES.items():
        assert kind in message and str(folder / name) in message, name
        assert message.index(kind) < message.index(str(folder / name)), name


def assert_complete_outputs(folder: Path, out: Path) -> None:
    """Masks and overlays of every good file, in display size; nothing for the bad ones, no partial file."""
    for name in GOOD_FILES:
        mask = Image.open(out / f"{Path(name).stem}_mask.png")
        assert mask.size == display_size(folder / name), name
        assert (out / f"{Path(name).stem}_overlay.jpg").is_file(), name
    assert not [p for p in out.iterdir() if p.name.startswith(".partial-")]
    assert not [name for name in BAD_FILES if (out / f"{Path(name).stem}_mask.png").exists()]
    listed = [line.split("\t") for line in (out / "skipped.txt").read_text().splitlines()]
    assert sorted((Path(path).name, kind) for path, kind, _ in listed) == sorted(BAD_FILES.items())


def display_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        width, height = image.size
        return (height, width) if image.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (width, height)


def assert_orientations_agree(out: Path) -> None:
    """Each EXIF orientation gives the mask and overlay of the untagged photo it displays."""
    plain = np.asarray(Image.open(out / "plain_mask.png"))
    plain_overlay = np.asarray(Image.open(out / "plain_overlay.jpg"), np.int16)
    assert 0 < plain.mean() < 255, "the lesion is found, and it is not the whole photo"
    for orientation in range(1, 9):
        mask = np.asarray(Image.open(out / f"exif_{orientation}_mask.png"))
        assert mask.shape == plain.shape, orientation
        assert (mask == plain).mean() > 0.99, orientation
        overlay = np.asarray(Image.open(out / f"exif_{orientation}_overlay.jpg"), np.int16)
        assert np.abs(overlay - plain_overlay).mean() < 4, orientation


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = real_folder(tmp_path / "photos")
    orientation_folder(folder)
    return folder


def onnx_segment(*args: str, cwd: Path) -> object:
    return run([PY, ONNX_SEGMENT, *args], cwd=cwd, check=False, env=child_env())


def test_onnx_segmenter_on_a_real_folder_from_any_folder(photos, tmp_path):
    # from a folder that is not the bundle's, with the bundle's own model by default
    proc = onnx_segment("--input_dir", str(photos), "--output_dir", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert_bad_files_named(proc.stderr, photos)
    assert_complete_outputs(photos, tmp_path / "out")
    assert_orientations_agree(tmp_path / "out")
    assert f"wrote {len(GOOD_FILES) + 9} masks to {tmp_path / 'out'}" in proc.stderr

    proc = onnx_segment("--input_dir", str(photos), "--output_dir", str(tmp_path / "stop"), "--on_unusable", "stop", cwd=tmp_path)
    assert proc.returncode == 1
    assert_bad_files_named(proc.stderr, photos)
    assert not (tmp_path / "stop").exists(), "a run that stops writes nothing"


def test_onnx_segmenter_reports_no_skip_when_all_files_are_good(tmp_path):
    folder = orientation_folder(tmp_path / "photos")[1].parent
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "skipped.txt").write_text("from an earlier run\n")
    proc = onnx_segment("--input_dir", str(folder), "--output_dir", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "skipped none" in proc.stderr
    assert not (tmp_path / "out" / "skipped.txt").exists()


@pytest.mark.slow
def test_bundle_inference_on_a_real_folder(photos, tmp_path):
    out = tmp_path / "out"
    proc = bundle("run", *INFER, "--input_dir", str(photos), "--output_dir", str(out), "--num_workers", "0", check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert_bad_files_named(proc.stderr, photos)
    assert_complete_outputs(photos, out)
    assert_orientations_agree(out)
    assert f"wrote {len(GOOD_FILES) + 9} masks to {out}" in proc.stdout + proc.stderr  # the closing line

    stop = tmp_path / "stop"
    proc = bundle("run", *INFER, "--input_dir", str(photos), "--output_dir", str(stop), "--on_unusable", "stop", check=False)
    assert proc.returncode == 1
    assert_bad_files_named(proc.stderr, photos)
    assert not stop.exists() or not any(stop.iterdir()), "a run that stops writes nothing"


@pytest.mark.slow
def test_bundle_and_onnx_segmenter_agree_on_every_orientation(tmp_path):
    folder = orientation_folder(tmp_path / "photos")[1].parent
    bundle("run", *INFER, "--input_dir", str(folder), "--output_dir", str(tmp_path / "torch"), "--num_workers", "0")
    run([PY, ONNX_SEGMENT, "--input_dir", str(folder), "--output_dir", str(tmp_path / "onnx")])
    for path in sorted(folder.iterdir()):
        name = f"{path.name.split('.')[0]}_mask.png"
        ours, theirs = (np.asarray(Image.open(tmp_path / side / name)) for side in ("torch", "onnx"))
        assert ours.shape == theirs.shape and (ours == theirs).mean() > 0.99, name


def test_prepare_pairs_a_phone_photo_with_its_mask_as_displayed(tmp_path):
    """Masks line up with the photo as displayed: a mask drawn on the displayed photo is taken
    for every EXIF orientation; one in the sensor's (stored) orientation is refused."""
    photo = displayed_photo()
    lesion = Image.fromarray(np.where(np.asarray(photo.convert("L")) < 100, 255, 0).astype(np.uint8))
    src = tmp_path / "mine"
    for orientation in range(1, 9):
        for sub in ("images", "masks"):
            (src / sub).mkdir(parents=True, exist_ok=True)
        save_with_orientation(photo, src / "images" / f"p{orientation}.jpg", orientation)
        lesion.save(src / "masks" / f"p{orientation}.png")
    proc = run(
        [PY, "-m", "prepare", "folder", "--src", str(src), "--out", str(tmp_path / "out"), "--fractions", "1", "0", "0"],
        check=False,
    )
    assert proc.returncode == 0, proc.stderr

    stored = Image.open(src / "images" / "p6.jpg").size  # (96, 128): the sensor's orientation
    lesion.transpose(Image.Transpose.ROTATE_90).save(src / "masks" / "p6.png")
    assert Image.open(src / "masks" / "p6.png").size == stored
    proc = run(
        [PY, "-m", "prepare", "folder", "--src", str(src), "--out", str(tmp_path / "bad"), "--fractions", "1", "0", "0"],
        check=False,
    )
    assert proc.returncode != 0 and "1 of 8 image/mask pairs are unusable" in proc.stderr
    assert f"images whose mask has another size (1):\n  {src / 'images' / 'p6.jpg'}" in proc.stderr
    assert not (tmp_path / "bad" / "datalist.json").exists()
