"""The bundle's ONNX model (models/model.onnx), the command that rebuilds it, and the segmenter
that runs it without PyTorch (commands/onnx_segment.py), through their command lines."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import networks

from commands import BUNDLE, INFER, PY, REPO, bundle, child_env, run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

MODEL = BUNDLE / "models" / "model.onnx"

# Run first in a child process: from then on torch and monai cannot be imported.
BLOCK_TORCH = """
import sys

class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "monai"):
            raise ImportError(f"{name} is blocked: onnx_segment.py must run without it")

sys.meta_path.insert(0, _Blocked())
"""


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory) -> dict[str, str]:
    """The environment of a child process in which torch and monai do not import."""
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCK_TORCH)
    env = child_env(PYTHONPATH=str(folder))
    for module in ("torch", "monai"):
        proc = subprocess.run([PY, "-c", f"import {module}"], capture_output=True, text=True, env=env)
        assert proc.returncode != 0 and "is blocked" in proc.stderr, module
    return env


def onnx_segment(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    return run([PY, "commands/onnx_segment.py", *args], env=env, check=check)


def test_shipped_onnx_model_is_small_self_contained_and_matches_pytorch():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())["onnx_model"]
    assert MODEL.stat().st_size <= 1024 * 1024
    model = onnx.load(str(MODEL))  # weights inside: no external data file
    assert not [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}, "standard operators only"
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    (image,), (pred,) = session.get_inputs(), session.get_outputs()
    assert (image.name, pred.name) == tuple(meta["inputs"]) + tuple(meta["outputs"])
    assert image.shape[1:] == meta["inputs"]["image"]["shape"][1:] and isinstance(image.shape[0], str)
    assert pred.shape[1:] == meta["outputs"]["pred"]["shape"][1:]
    assert meta["file"] == "models/model.onnx" and meta["size_bytes"] == MODEL.stat().st_size

    net = networks.load_reference_weights(networks.UltraLightVMUNet(), BUNDLE / "models" / "model.pt").eval()
    generator = torch.Generator().manual_seed(0)
    for batch in (1, 4):  # any batch size
        x = torch.rand(batch, *image.shape[1:], generator=generator) * 255
        with torch.no_grad():
            expected = net(x).numpy()
        # float32 rounding grows with the logits' size: trained weights give logits of tens
        scale = max(1.0, float(np.abs(expected).max()))
        assert np.abs(session.run(None, {"image": x.numpy()})[0] - expected).max() < 2e-5 * scale


@pytest.mark.slow
def test_export_command_rebuilds_and_checks_the_model(tmp_path):
    out = tmp_path / "model.onnx"
    proc = run([PY, "commands/export_onnx.py", "--output", str(out), "--spatial_size", "64"])
    assert "largest difference from PyTorch" in proc.stderr
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {"image": np.zeros((3, 3, 64, 64), np.float32)})[0].shape == (3, 1, 64, 64)

    # a model that fails its check against PyTorch does not replace the one there
    written = out.read_bytes()
    proc = run([PY, "commands/export_onnx.py", "--output", str(out), "--spatial_size", "64", "--tolerance", "1e-12"], check=False)
    assert proc.returncode == 1 and "differs from PyTorch" in proc.stderr and "was not written" in proc.stderr
    assert out.read_bytes() == written and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]

    proc = run([PY, "commands/export_onnx.py", "--output", str(tmp_path / "bad.onnx"), "--spatial_size", "48"], check=False)
    assert proc.returncode == 1 and "spatial_size must be a multiple of 32, got 48" in proc.stderr
    assert not (tmp_path / "bad.onnx").exists()
    proc = run([PY, "commands/export_onnx.py", "--ckpt_path", str(tmp_path / "missing.pt")], check=False)
    assert proc.returncode == 1 and "missing.pt: no such file" in proc.stderr


def lesion_images(folder: Path, tmp_path: Path) -> list[str]:
    """Demo-set images (what the shipped model was trained on) in several sizes, formats and
    channel layouts."""
    run([PY, "-m", "prepare", "synthetic", "--out", str(tmp_path / "demo"), "--num-images", "3"], cwd=REPO)
    sources = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((tmp_path / "demo" / "images").glob("*.png"))]
    folder.mkdir()

    def resized(index: int, height: int, width: int) -> Image.Image:
        return Image.fromarray(sources[index]).resize((width, height), Image.BILINEAR)

    Image.fromarray(sources[0]).save(folder / "demo.png")
    resized(1, 333, 517).save(folder / "wide.jpg", quality=95)
    resized(2, 45, 70).convert("L").save(folder / "small_gray.png")
    resized(0, 120, 90).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(np.asarray(resized(1, 100, 100).convert("L")).astype(np.uint16) * 200).save(folder / "deep16.png")
    nifti = np.asarray(resized(2, 60, 80).convert("L"), np.float32)
    nib.save(nib.Nifti1Image(nifti, np.diag([0.5, 0.7, 1.0, 1.0])), folder / "slice.nii.gz")
    # large enough to be read at a reduced scale (JPEG decoded at 1/4, PNG box-averaged by 3),
    # with grain that only reading so averages away
    grain = np.random.default_rng(0).normal(0, 15, (1500, 2000, 3))
    Image.fromarray(np.clip(np.asarray(resized(0, 1500, 2000), np.float32) + grain, 0, 255).astype(np.uint8)).save(
        folder / "photo.jpg", quality=90
    )
    Image.fromarray(np.clip(np.asarray(resized(1, 800, 1100), np.float32) + grain[:800, :1100], 0, 255).astype(np.uint8)).save(
        folder / "big.png"
    )
    return ["demo", "wide", "small_gray", "rgba", "deep16", "slice", "photo", "big"]


@pytest.mark.slow
def test_onnx_segment_without_torch_agrees_with_the_bundle(tmp_path, without_torch):
    names = lesion_images(tmp_path / "in", tmp_path)
    bundle("run", *INFER, "--input_dir", str(tmp_path / "in"), "--output_dir", str(tmp_path / "torch"), "--num_workers", "0")
    onnx_segment("--input_dir", str(tmp_path / "in"), "--output_dir", str(tmp_path / "onnx"), env=without_torch)

    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == sorted(p.name for p in (tmp_path / "torch").iterdir())
    found = []
    for name in names:
        if name == "slice":
            ours, theirs = nib.load(tmp_path / "onnx" / "slice_mask.nii.gz"), nib.load(tmp_path / "torch" / "slice_mask.nii.gz")
            np.testing.assert_allclose(ours.affine, theirs.affine)
            assert ours.get_data_dtype() == theirs.get_data_dtype()
            ours, theirs = np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj)
        else:
            ours = np.asarray(Image.open(tmp_path / "onnx" / f"{name}_mask.png"))
            theirs = np.asarray(Image.open(tmp_path / "torch" / f"{name}_mask.png"))
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, name
        assert (ours == theirs).mean() >= 0.999, name
        found.append((theirs > 0).mean())
        overlays = [Image.open(tmp_path / d / f"{name}_overlay.jpg") for d in ("onnx", "torch")]
        assert overlays[0].size == overlays[1].size and overlays[0].mode == overlays[1].mode
    assert 0.02 < np.mean(found) < 0.9, "the demo model should find lesions in demo images"


def test_onnx_segment_without_torch_segments_a_folder(demo, tmp_path, without_torch):
    """The quick run of the segmenter: the shipped model on the demo set's test images, in a
    process where torch cannot load; each mask has its image's size and covers its lesion."""
    images = sorted((demo / "images").glob("*.png"))[-4:]
    for image in images:
        shutil.copy(image, tmp_path / image.name)
    onnx_segment("--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"), env=without_torch)
    for image in images:
        mask = np.asarray(Image.open(tmp_path / "out" / f"{image.stem}_mask.png")) > 0
        label = np.asarray(Image.open(demo / "masks" / image.name)) > 127
        assert mask.shape == label.shape
        assert 2 * (mask & label).sum() / (mask.sum() + label.sum()) > 0.7, image.name
        assert (tmp_path / "out" / f"{image.stem}_overlay.jpg").is_file()


def test_onnx_segment_refuses_bad_inputs_as_the_bundle_does(tmp_path, without_torch):
    broken = tmp_path / "in"
    broken.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(broken / "fine.png")
    (broken / "broken.png").write_bytes(b"not a png")
    stop = ("--on_unusable", "stop")
    proc = onnx_segment("--input_dir", str(broken), "--output_dir", str(tmp_path / "out"), *stop, env=without_torch, check=False)
    assert proc.returncode == 1 and f"files that are not images (1):\n  {broken / 'broken.png'}" in proc.stderr
    assert not (tmp_path / "out").exists(), "nothing is written when an input is unreadable"

    empty = tmp_path / "empty"
    empty.mkdir()
    proc = onnx_segment("--input_dir", str(empty), "--output_dir", str(tmp_path / "out"), env=without_torch, check=False)
    assert proc.returncode == 1 and f"input_dir {empty}: no images" in proc.stderr
    proc = onnx_segment(
        "--input_dir", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path / "out"), env=without_torch, check=False
    )
    assert proc.returncode == 1 and "no such folder" in proc.stderr

    (broken / "broken.png").unlink()
    proc = onnx_segment(
        "--input_dir",
        str(broken),
        "--output_dir",
        str(tmp_path / "out"),
        "--model",
        str(tmp_path / "none.onnx"),
        env=without_torch,
        check=False,
    )
    assert proc.returncode == 1 and "none.onnx: no such file" in proc.stderr
    assert not (tmp_path / "out").exists()
