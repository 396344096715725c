"""End-to-end tests of the MONAI bundle (bundle/), through its public command lines.

Every run is a subprocess (`python -m monai.bundle ...`, `torchrun`), as a user would start
it, on a small generated demo set (64x64 images, spatial_size 64) in temporary folders. One
tiny model, trained once for the session (conftest.py), is shared by the evaluation/inference
tests. The quick suite trains, evaluates, infers and trains with DDP; the long runs are `slow`.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sysconfig
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import networks

from commands import BUNDLE, EVALUATE, INFER, PY, REPO, SMALL, TORCHRUN, TRAIN, bundle, child_env, read_picture, run

PARITY_FIXTURE = REPO / "tests" / "data" / "ulvmunet_parity_seed2024.pt"


def test_training_saves_best_weights_full_state_and_logs(demo, trained):
    out, log = trained
    # best weights: a plain state dict, loadable strictly into the network
    weights = torch.load(out / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in weights.values())
    networks.load_reference_weights(networks.UltraLightVMUNet(), out / "model.pt")
    # latest full state, for resuming
    state = torch.load(out / "checkpoint_epoch=2.pt", weights_only=True)
    assert set(state) == {"model", "optimizer", "lr_scheduler", "trainer", "best_dsc"}
    assert state["trainer"]["iteration"] == 2 * state["trainer"]["epoch_length"]  # after epoch 2
    assert state["best_dsc"]["best_metric"] > 0, "the best-DSC record travels with the full state"
    # cosine schedule stepped once per epoch: lr = eta_min + (lr0 - eta_min) (1 + cos(pi * 2 / 50)) / 2
    expected_lr = 1e-5 + (1e-3 - 1e-5) * (1 + np.cos(np.pi * 2 / 50)) / 2
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(expected_lr)
    assert "val_dsc" in log and "train_loss" in log
    # a log sent to a pipe: one line per epoch, no per-iteration lines, no progress-bar redraws
    assert len(re.findall(r"epoch \d/2: train_loss [0-9.]+ over 4 iterations", log)) == 2
    assert "Iter:" not in log and "\r" not in log and "it/s" not in log
    assert len(list((out / "cache").glob("*.pt"))) == 16, "one cached case per training and validation case"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in (out / "tensorboard").glob("events.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"]) | set(accumulator.Tags()["images"])
    assert {"train_loss", "learning_rate", "val_dsc"} <= tags
    assert {"input_0_HW_0", "input_1_HW_0", "output_HW_0"} <= tags  # image, label, prediction


@pytest.mark.slow
def test_plain_run_resumes_from_latest_full_state(demo, trained, tmp_path):
    out = tmp_path / "train"
    shutil.copytree(trained[0], out)
    cached = sorted((out / "cache").iterdir())
    # `run` without an id must train too (model-zoo tools call it so)
    proc = bundle("run", *TRAIN, "--dataset_dir", str(demo), "--output_dir", str(out), "--num_epochs", "3", *SMALL)
    log = proc.stdout + proc.stderr
    assert "resuming from" in log and "checkpoint_epoch=2.pt" in log
    assert "epoch 3/3: train_loss" in log
    assert "epoch 1/3" not in log and "epoch 2/3" not in log, "the resumed run trained from scratch"
    state = torch.load(out / "checkpoint_epoch=3.pt", weights_only=True)
    iterations_per_epoch = state["trainer"]["epoch_length"]
    assert state["trainer"]["iteration"] == 3 * iterations_per_epoch
    # Adam's step count carried over: 3 epochs of updates, not 1
    assert all(s["step"] == 3 * iterations_per_epoch for s in state["optimizer"]["state"].values())
    assert sorted((out / "cache").iterdir()) == cached, "the second start read the cached cases"


@pytest.mark.slow
def test_training_keeps_the_shipped_weights_unless_asked_to_publish(demo, tmp_path):
    """A plain run writes only into output_dir (here: the default, runs/ in the bundle) and,
    without validation cases (MONAI Label's `val_split: 0`), keeps each epoch's weights;
    `--publish_model true` replaces models/model.pt and keeps the replaced file beside it."""
    copy = tmp_path / "bundle"
    for part in ("configs", "scripts", "models"):
        shutil.copytree(BUNDLE / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shipped = (copy / "models" / "model.pt").read_bytes()
    ckpt = ["--ckpt_path", "./models/model.pt"]  # a MONAI Label run starts from the served weights too

    proc = bundle(
        "run",
        "training",
        *TRAIN,
        "--dataset_dir",
        str(demo),
        "--num_epochs",
        "1",
        *SMALL,
        *ckpt,
        "--validate#dataset#data",
        "[]",
        cwd=copy,
    )
    assert "no validation cases" in proc.stdout + proc.stderr and (copy / "runs" / "model.pt").exists()
    assert (copy / "models" / "model.pt").read_bytes() == shipped
    assert not (copy / "models" / "replaced").exists()

    bundle(
        "run",
        "training",
        *TRAIN,
        "--dataset_dir",
        str(demo),
        "--output_dir",
        str(tmp_path / "out"),
        "--num_epochs",
        "1",
        *SMALL,
        *ckpt,
        "--publish_model",
        "true",
        cwd=copy,
    )
    published = (copy / "models" / "model.pt").read_bytes()
    assert published != shipped and published == (tmp_path / "out" / "model.pt").read_bytes()
    assert [p.read_bytes() for p in (copy / "models" / "replaced").glob("model_*.pt")] == [shipped]
    # the shipped exports hold the replaced weights: moved aside beside them, with how to rebuild them
    assert sorted(p.suffix for p in (copy / "models").iterdir() if p.is_file()) == [".pt"]
    assert sorted(p.suffix for p in (copy / "models" / "replaced").glob("model_*")) == [".onnx", ".pt", ".ts"]
    assert "commands/export_onnx.py" in (copy / "models" / "replaced" / "REBUILD.txt").read_text()


def test_evaluate_pools_confusion_matrix_over_test_pixels(demo, trained, tmp_path):
    out = tmp_path / "eval"
    bundle(
        "run",
        *EVALUATE,
        "--dataset_dir",
        str(demo),
        "--output_dir",
        str(out),
        "--ckpt_path",
        str(trained[0] / "model.pt"),
        *SMALL,
    )
    test_cases = json.loads((demo / "datalist.json").read_text())["test"]
    tp = fp = fn = tn = 0
    for case in test_cases:
        stem = Path(case["image"]).stem
        prediction = read_picture(out / f"{stem}_mask.png") > 127
        truth = read_picture(demo / case["label"]) > 127  # 64x64 already: the resize is the identity
        tp += np.sum(prediction & truth)
        fp += np.sum(prediction & ~truth)
        fn += np.sum(~prediction & truth)
        tn += np.sum(~prediction & ~truth)
        overlay = read_picture(out / f"{stem}_overlay.jpg")
        assert overlay.shape == (64, 64, 3)
        green = (overlay[..., 1] > 200) & (overlay[..., 0] < 80) & (overlay[..., 2] < 80)  # JPEG: near (0, 255, 0)
        assert green.any(), "ground-truth contour missing"
    assert tp + fp > 0, "the 2-epoch model predicts no lesion pixel at all"
    expected = {
        "dsc": 2 * tp / (2 * tp + fp + fn),
        "miou": tp / (tp + fp + fn),
        "acc": (tp + tn) / (tp + tn + fp + fn),
        "se": tp / (tp + fn),
        "sp": tn / (tn + fp),
    }
    with open(out / "metrics.csv") as f:
        reported = {row[0]: float(row[1]) for row in csv.reader(f)}
    for name, value in expected.items():
        assert reported[name] == pytest.approx(value, abs=1e-5), name
    with open(out / "dice_raw.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(r["filename"]).name for r in rows) == sorted(Path(c["image"]).name for c in test_cases)

    # report.html: every image counted once in the histogram, the worst overlays shown lowest first
    page = (out / "report.html").read_text()
    svg = page[page.index("<svg") : page.index("</svg>")]
    counts = [int(n) for n in re.findall(r"<title>[0-9.]+-[0-9.]+: (\d+)</title>", svg)]
    assert len(counts) == 20 and sum(counts) == len(test_cases)
    shown = re.findall(r'<img src="([^"]+)"', page)
    worst_first = sorted(rows, key=lambda r: float(r["mean"]))
    assert shown == [f"{Path(r['filename']).stem}_overlay.jpg" for r in worst_first][: len(shown)] and shown
    assert all((out / name).exists() for name in shown)
    assert "ground truth" in page and "prediction" in page


def write_odd_images(folder: Path, source: np.ndarray) -> dict[str, tuple]:
    """Images of several formats and layouts; returns name -> expected mask shape."""
    folder.mkdir()
    gray = Image.fromarray(source.mean(-1).astype(np.uint8)).resize((70, 50))
    gray.save(folder / "gray_50x70.png")
    Image.fromarray(np.dstack([source, np.full(source.shape[:2], 255, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray((source.mean(-1) * 250).astype(np.uint16)).save(folder / "deep16.png")
    Image.fromarray(source).resize((90, 33)).save(folder / "wide.bmp")
    Image.fromarray(source).save(folder / "photo.jpg")
    Image.fromarray(source).save(folder / "scan.tif")
    affine = np.array([[0.5, 0, 0, 10], [0, 0.7, 0, -3], [0, 0, 1, 2], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(source.mean(-1).astype(np.float32)[:, :48], affine), folder / "slice.nii.gz")
    nib.save(nib.Nifti1Image(source.mean(-1).astype(np.int16)[:40, :, None], affine), folder / "slab.nii")
    return {
        "gray_50x70": (50, 70),
        "rgba": (64, 64),
        "deep16": (64, 64),
        "wide": (33, 90),
        "photo": (64, 64),
        "scan": (64, 64),
        "slice": (64, 48),
        "slab": (40, 64, 1),
    }


def test_inference_keeps_original_size_for_any_format(demo, trained, tmp_path):
    source = read_picture(sorted((demo / "images").glob("*.png"))[0])
    expected = write_odd_images(tmp_path / "in", source)
    out = tmp_path / "out"
    bundle(
        "run",
        *INFER,
        "--input_dir",
        str(tmp_path / "in"),
        "--output_dir",
        str(out),
        "--ckpt_path",
        str(trained[0] / "model.pt"),
        *SMALL,
    )
    for name, shape in expected.items():
        if name in ("slice", "slab"):
            image = nib.load(out / f"{name}_mask.nii.gz")
            source_image = nib.load(next((tmp_path / "in").glob(f"{name}.nii*")))
            assert image.shape == shape
            np.testing.assert_allclose(image.affine, source_image.affine)
            assert set(np.unique(np.asanyarray(image.dataobj))) <= {0, 255}
            # the overlay shows X across and Y down, as MONAI writes an (X, Y) array as a picture
            assert read_picture(out / f"{name}_overlay.jpg").shape[:2] == shape[:2][::-1]
        else:
            mask = read_picture(out / f"{name}_mask.png")
            assert mask.shape == shape and mask.dtype == np.uint8, name
            assert set(np.unique(mask)) <= {0, 255}
            assert read_picture(out / f"{name}_overlay.jpg").shape[:2] == shape[:2]


@pytest.mark.slow
def test_inference_on_a_large_photo_writes_a_full_size_mask_and_a_bounded_overlay(demo, trained, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    source = Image.open(sorted((demo / "images").glob("*.png"))[0])
    source.resize((2000, 1500), Image.Resampling.BILINEAR).save(folder / "photo.jpg", quality=90)
    out = tmp_path / "out"
    bundle(
        "run", *INFER, "--input_dir", str(folder), "--output_dir", str(out), "--ckpt_path", str(trained[0] / "model.pt"), *SMALL
    )
    mask = read_picture(out / "photo_mask.png")
    assert mask.shape == (1500, 2000) and set(np.unique(mask)) <= {0, 255}
    assert read_picture(out / "photo_overlay.jpg").shape == (768, 1024, 3)


@pytest.mark.slow
def test_inference_with_compile_true_gives_the_eager_masks(demo, trained, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in sorted((demo / "images").glob("*.png"))[:4]:  # one full batch: one compiled graph
        shutil.copy(path, folder)
    weights = ["--ckpt_path", str(trained[0] / "model.pt")]
    for mode in ("false", "true"):
        bundle(
            "run", *INFER, "--input_dir", str(folder), "--output_dir", str(tmp_path / mode), "--compile", mode, *weights, *SMALL
        )
    for path in folder.iterdir():
        eager, compiled = (read_picture(tmp_path / mode / f"{path.stem}_mask.png") for mode in ("false", "true"))
        assert compiled.shape == eager.shape
        # inductor reorders float32 sums (logits differ by about 1e-5): a pixel at 0.5 may flip
        assert (compiled != eager).mean() <= 1e-3, path.name


@pytest.mark.slow
def test_bad_inputs_fail_with_the_file_named(demo, trained, tmp_path):
    weights = ["--ckpt_path", str(trained[0] / "model.pt")]
    broken = tmp_path / "in"
    broken.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(broken / "fine.png")
    (broken / "broken.png").write_bytes(b"not a png")
    stop = ["--on_unusable", "stop"]
    proc = bundle("run", *INFER, "--input_dir", str(broken), "--output_dir", str(tmp_path / "out"), *stop, *weights, check=False)
    assert proc.returncode != 0 and f"error: files that are not images (1):\nerror:   {broken / 'broken.png'}" in proc.stderr
    assert not (tmp_path / "out").exists(), "nothing is written when an input is unreadable"

    empty = tmp_path / "empty"
    empty.mkdir()
    proc = bundle("run", *INFER, "--input_dir", str(empty), *weights, check=False)
    assert proc.returncode != 0 and f"input_dir {empty}: no images" in proc.stderr

    proc = bundle("run", *EVALUATE, "--dataset_dir", str(empty), *weights, check=False)
    assert proc.returncode != 0 and f"{empty / 'datalist.json'}: no such file" in proc.stderr

    out = tmp_path / "out48"
    size48 = ["--input_dir", str(demo / "images"), "--spatial_size", "48", "--output_dir", str(out)]
    proc = bundle("run", *INFER, *size48, *weights, check=False)
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert last.startswith("error: spatial_size 48: must be a positive multiple of 32"), last
    assert not out.exists(), "nothing is written when a setting is refused"


@pytest.mark.slow
def test_reference_checkpoint_through_ckpt_path(demo, tmp_path):
    """A reference-release state dict loads by ckpt_path and gives the network's own output."""
    fixture = torch.load(PARITY_FIXTURE, weights_only=True)
    torch.save(fixture["state_dict"], tmp_path / "reference.pt")
    images = tmp_path / "in"
    images.mkdir()
    for path in sorted((demo / "images").glob("*.png"))[:2]:
        shutil.copy(path, images)
    out = tmp_path / "out"
    bundle(
        "run", *INFER, "--input_dir", str(images), "--output_dir", str(out), "--ckpt_path", str(tmp_path / "reference.pt"), *SMALL
    )

    net = networks.load_reference_weights(networks.UltraLightVMUNet(), tmp_path / "reference.pt").eval()
    for path in sorted(images.iterdir()):
        rgb = torch.from_numpy(read_picture(path).astype(np.float32)).permute(2, 0, 1)  # (C, H, W), as the release
        scaled = (rgb - rgb.min()) / (rgb.max() - rgb.min()) * 255  # per-image min-max to [0, 255]
        with torch.no_grad():
            probability = torch.sigmoid(net(scaled[None]))[0, 0].numpy()
        mask = read_picture(out / f"{path.stem}_mask.png") > 127
        decided = np.abs(probability - 0.5) > 1e-4  # pixels not on the threshold's knife edge
        assert decided.mean() > 0.99
        np.testing.assert_array_equal(mask[decided], probability[decided] > 0.5)


@pytest.mark.slow
def test_torchscript_export_matches_eager(trained, tmp_path):
    weights = trained[0] / "model.pt"
    bundle(
        "ckpt_export",
        "network_def",
        "--filepath",
        str(tmp_path / "model.ts"),
        "--ckpt_file",
        str(weights),
        "--meta_file",
        "configs/metadata.json",
        "--config_file",
        "configs/inference.yaml",
    )
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    eager = networks.load_reference_weights(networks.UltraLightVMUNet(), weights).eval()
    x = torch.rand(2, 3, 64, 96) * 255
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), eager(x), rtol=1e-5, atol=1e-5)


def test_ddp_training_with_gloo_on_two_processes(demo, tmp_path):
    out = tmp_path / "ddp"
    configs = "['configs/train.yaml','configs/multi_gpu_train.yaml']"
    data = ["--dataset_dir", str(demo), "--output_dir", str(out), "--num_epochs", "1", *SMALL]
    proc = run([TORCHRUN, "--nproc_per_node=2", "-m", "monai.bundle", "run", "training", "--config_file", configs, *data])
    log = proc.stdout + proc.stderr
    assert "val_dsc" in log
    # 14 training cases over 2 ranks of batch 4: 2 iterations per epoch and rank
    assert re.search(r"epoch 1/1: train_loss [0-9.]+ over 2 iterations", log)
    assert (out / "model.pt").is_file() and (out / "checkpoint_epoch=1.pt").is_file()
    writers = {p.name.split(".")[-2] for p in (out / "tensorboard").glob("events.*")}  # process ids
    assert len(writers) == 1, "only rank 0 writes TensorBoard logs"


@pytest.mark.slow
def test_num_classes_above_one_trains_evaluates_and_infers(demo, tmp_path):
    """Integer label maps (0 background, 1 lesion, 2 a ring around it), softmax over 3 classes."""
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    for mask_path in (data / "masks").glob("*.png"):
        lesion = read_picture(mask_path) > 127
        grown = lesion.copy()
        for axis in (0, 1):
            grown |= np.roll(lesion, 3, axis) | np.roll(lesion, -3, axis)
        Image.fromarray((lesion * 1 + (grown & ~lesion) * 2).astype(np.uint8)).save(mask_path)
    out = tmp_path / "out"
    bundle("run", *TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), "--num_epochs", "1", "--num_classes", "3", *SMALL)
    assert torch.load(out / "model.pt", weights_only=True)["final.weight"].shape[0] == 3
    common = ["--ckpt_path", str(out / "model.pt"), "--num_classes", "3", *SMALL]
    bundle("run", *EVALUATE, "--dataset_dir", str(data), "--output_dir", str(tmp_path / "eval"), *common)
    with open(tmp_path / "eval" / "metrics.csv") as f:
        assert 0 <= float(dict(csv.reader(f))["dsc"]) <= 1
    bundle("run", *INFER, "--input_dir", str(data / "images"), "--output_dir", str(tmp_path / "pred"), *common)
    mask = read_picture(next((tmp_path / "pred").glob("*_mask.png")))
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 1, 2}


@pytest.mark.slow
def test_pvm_groups_trains_evaluates_tabulates_and_refuses_a_mismatch(demo, tmp_path):
    """The paper's ablation for one degree: train and evaluate with --pvm_groups 2, gather the
    table; a config of another degree stops with the loader's error naming pvm_groups."""
    run_dir = tmp_path / "pvm2"
    degree = ["--pvm_groups", "2"]
    bundle("run", *TRAIN, "--dataset_dir", str(demo), "--output_dir", str(run_dir), "--num_epochs", "1", *degree, *SMALL)
    net = networks.load_reference_weights(networks.UltraLightVMUNet(pvm_groups=2), run_dir / "model.pt")
    assert sum(p.numel() for p in net.parameters()) == 69589
    weights = ["--ckpt_path", str(run_dir / "model.pt")]
    bundle("run", *EVALUATE, "--dataset_dir", str(demo), "--output_dir", str(run_dir / "eval"), *weights, *degree, *SMALL)
    with open(run_dir / "eval" / "metrics.csv") as f:
        dsc = float(dict(csv.reader(f))["dsc"])

    table = run([PY, "commands/ablation_table.py", str(run_dir), "--spatial_size", "64"]).stdout
    row = next(line for line in table.splitlines() if line.startswith("| 2 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:2] == ["2", "69,589"] and cells[3] == f"{dsc:.4f}"
    assert cells[5:] == ["0.070M", "0.060", "0.9073"]  # the paper's row beside

    proc = bundle(
        "run", *INFER, "--input_dir", str(demo / "images"), "--output_dir", str(tmp_path / "pred"), *weights, check=False
    )
    assert proc.returncode != 0 and "pvm_groups=2, the model has pvm_groups=4" in proc.stderr
    assert "size mismatch" not in proc.stderr, "a shape traceback instead of the loader's error"
    # resuming the run with another degree in the same output_dir
    proc = bundle(
        "run",
        "training",
        *TRAIN,
        "--dataset_dir",
        str(demo),
        "--output_dir",
        str(run_dir),
        "--num_epochs",
        "2",
        *SMALL,
        check=False,
    )
    assert proc.returncode != 0 and "checkpoint_epoch=1.pt does not fit" in proc.stderr and "--pvm_groups 2" in proc.stderr


def test_metadata_has_what_the_model_zoo_schema_requires():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert meta["schema"].endswith("/meta_schema_20240725.json")
    required = [
        "version",
        "changelog",
        "monai_version",
        "pytorch_version",
        "numpy_version",
        "required_packages_version",
        "task",
        "description",
        "authors",
        "copyright",
        "network_data_format",
        "intended_use",
        "references",
        "data_source",
        "eval_metrics",
    ]
    assert not [key for key in required if not meta.get(key)]
    assert meta["version"] in meta["changelog"]
    # MONAI 1.6 renames this deprecated key to required_packages_version, replacing the real one
    assert "optional_packages_version" not in meta
    assert {"pytorch-ignite", "nibabel", "pillow"} <= set(meta["required_packages_version"])
    tensor_keys = {"type", "format", "num_channels", "spatial_shape", "dtype", "value_range", "is_patch_data", "channel_def"}
    for part in ("inputs", "outputs"):
        for name, tensor in meta["network_data_format"][part].items():
            assert tensor_keys <= set(tensor), (part, name)
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 3
    assert all(0 < v <= 1 for v in meta["eval_metrics"].values()), "demo metrics not filled in"
    assert len(list((BUNDLE / "configs").glob("*.yaml"))) == 4
    bundle("verify_net_in_out", "network_def", "--meta_file", "configs/metadata.json", "--config_file", "configs/inference.yaml")


def test_shipped_demo_model_and_torchscript():
    """models/model.pt is our demo model; models/model.ts its TorchScript export."""
    net = networks.load_reference_weights(networks.UltraLightVMUNet(), BUNDLE / "models" / "model.pt").eval()
    scripted = torch.jit.load(str(BUNDLE / "models" / "model.ts"))
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_standalone_bundle_runs_without_the_repository(demo, tmp_path):
    run([PY, str(BUNDLE / "commands" / "export_bundle.py"), "--out", str(tmp_path / "export")], cwd=REPO)
    with zipfile.ZipFile(tmp_path / "export" / "ultralight_vmunet.zip") as archive:
        archive.extractall(tmp_path / "unpacked")
    root = tmp_path / "unpacked" / "ultralight_vmunet"
    assert (root / "networks" / "__init__.py").is_file() and (root / "LICENSE").is_file()
    assert not (root / "commands" / "export_bundle.py").exists()
    assert (root / "models" / "model.onnx").is_file() and (root / "commands" / "onnx_segment.py").is_file()
    # -S: no site processing, so the editable install's import hook for the repository is not
    # loaded; the dependencies come from site-packages on PYTHONPATH
    env = child_env(PYTHONPATH=sysconfig.get_paths()["purelib"])
    probe = run(
        [
            PY,
            "-S",
            "-c",
            "import networks, scripts, importlib.util as u; print(networks.__file__); print(u.find_spec('prepare'))",
        ],
        cwd=root,
        env=env,
    ).stdout.split()
    assert Path(probe[0]).resolve().is_relative_to(root.resolve()) and probe[1] == "None"
    standalone = [PY, "-S", "-m", "monai.bundle", "run"]
    out = tmp_path / "out"
    run(
        [*standalone, "training", *TRAIN, "--dataset_dir", str(demo), "--output_dir", str(out), "--num_epochs", "1", *SMALL],
        cwd=root,
        env=env,
    )
    run(
        [*standalone, *INFER, "--input_dir", str(demo / "images"), "--output_dir", str(tmp_path / "pred"), *SMALL],
        cwd=root,
        env=env,
    )
    assert len(list((tmp_path / "pred").glob("*_mask.png"))) == 20


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["export_onnx", "onnx_segment", "ablation_table", "settings_table", "export_bundle"])
def test_the_tools_old_paths_refuse_naming_the_new_command(tool, tmp_path):
    """`python scripts/<tool>.py` (from any folder) and `python -m scripts.<tool>` (from the bundle
    root) stop before doing anything, with the command line to run instead."""
    new = f"{BUNDLE / 'commands' / tool}.py --out x"
    by_path = run([PY, str(BUNDLE / "scripts" / f"{tool}.py"), "--out", "x"], cwd=tmp_path, check=False)
    as_module = run([PY, "-m", f"scripts.{tool}", "--out", "x"], cwd=BUNDLE, check=False)
    for proc in (by_path, as_module):
        assert proc.returncode == 1 and f"python {new}" in proc.stderr
    assert sorted(tmp_path.iterdir()) == []
