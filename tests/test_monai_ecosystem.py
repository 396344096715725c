"""The bundle with MONAI's own tools: the workflow API, a MONAI Label-style inference, ISIC's scorer.

Non-square images with an off-centre lesion, cut from 256x256 synthetic cases, are segmented
by the shipped demo weights (models/model.pt) at their training size.
"""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from commands import BUNDLE, EVALUATE, INFER, PY, bundle, read_picture, run

sys.path.insert(0, str(BUNDLE))  # the bundle's `scripts` package, as the configs import it

# name -> (rows, columns) cut from the 256x256 case: the lesion of case 1 lies right of centre
CUTS = {"square": (slice(None), slice(None)), "wide": (slice(16, 176), slice(None)), "tall": (slice(None), slice(60, 230))}


@pytest.fixture(scope="module")
def lesions(tmp_path_factory) -> Path:
    """images/<name>.png and truth/<name>.png for each cut of one 256x256 synthetic case."""
    root = tmp_path_factory.mktemp("lesions")
    run(
        [PY, "-m", "prepare", "synthetic", "--out", str(root / "synthetic"), "--num-images", "2", "--size", "256"],
        cwd=BUNDLE.parent,
    )
    image = read_picture(root / "synthetic" / "images" / "synthetic_0001.png")
    mask = read_picture(root / "synthetic" / "masks" / "synthetic_0001.png")
    for folder in ("images", "truth"):
        (root / folder).mkdir()
    for name, (rows, columns) in CUTS.items():
        Image.fromarray(image[rows, columns]).save(root / "images" / f"{name}.png")
        Image.fromarray(mask[rows, columns]).save(root / "truth" / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def bundle_masks(lesions) -> Path:
    """The bundle's own inference of the lesion images (shipped weights, defaults)."""
    out = lesions / "bundle_masks"
    bundle("run", *INFER, "--input_dir", str(lesions / "images"), "--output_dir", str(out), "--num_workers", "0")
    return out


@pytest.mark.slow
def test_masks_land_on_the_lesion_in_non_square_images(lesions, bundle_masks):
    for name in CUTS:
        mask, truth = read_picture(bundle_masks / f"{name}_mask.png") > 127, read_picture(lesions / "truth" / f"{name}.png") > 127
        assert mask.shape == truth.shape, name
        assert (mask & truth).sum() / (mask | truth).sum() > 0.8, name
        np.testing.assert_allclose(np.argwhere(mask).mean(0), np.argwhere(truth).mean(0), atol=4, err_msg=name)


@pytest.mark.slow
def test_monai_label_style_inference_gives_the_bundle_masks(lesions, bundle_masks, tmp_path, monkeypatch):
    """What MONAI Label 0.8.5's BundleInferTask does with configs/inference.yaml: parse
    `preprocessing`, `inferer` and `postprocessing` by id, drop SaveImaged steps, run the
    network on one image, restore the prediction to the input's geometry (its `Restored`),
    and write it with MONAI's writer."""
    from monai.bundle import ConfigParser
    from monai.data import MetaTensor, PILWriter
    from monai.transforms import Compose, LoadImaged, Resize, SaveImaged

    monkeypatch.chdir(tmp_path)  # anything written to a relative path would show up here
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.yaml"))
    parser.config.update({"bundle_root": str(BUNDLE), "device": "cpu"})
    network = parser.get_parsed_content("network_def", instantiate=True)
    network.load_state_dict(torch.load(BUNDLE / "models" / "model.pt", weights_only=True), strict=True)
    network.eval()

    def steps(key: str) -> list:
        found = parser.get_parsed_content(key, instantiate=True)
        found = list(found.transforms) if isinstance(found, Compose) else found
        return [t for t in found if not isinstance(t, SaveImaged)]

    preprocessing = steps("preprocessing")
    for t in preprocessing:
        if isinstance(t, LoadImaged):
            t._loader.image_only = False  # as MONAI Label: the metadata also under image_meta_dict
    inferer = parser.get_parsed_content("inferer", instantiate=True)
    postprocessing = steps("postprocessing")
    labels = {
        v.lower(): int(k)
        for k, v in json.loads((BUNDLE / "configs" / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"][
            "channel_def"
        ].items()
        if v.lower() != "background"
    }
    assert labels == {"lesion": 255}

    for name in CUTS:
        data = {"image": str(lesions / "images" / f"{name}.png")}
        for t in preprocessing:
            data = t(data)
        with torch.no_grad():
            data["pred"] = inferer(data["image"][None], network)[0]
        for t in postprocessing:
            data = t(data)
        # Restored(keys="pred", ref_image="image"): back to the image's spatial_shape, if needed
        result = data["pred"]
        meta = data["image"].meta if isinstance(data["image"], MetaTensor) else data["image_meta_dict"]
        current = result.shape[1:]
        spatial = tuple(meta.get("spatial_shape", current))[-len(current) :]
        if tuple(current) != spatial:
            result = Resize(spatial_size=spatial, mode="nearest")(result)
        assert result.dtype == torch.uint8 and result.ndim == 2, "a label map without a channel axis"
        writer = PILWriter(output_dtype=np.uint8, scale=None)
        writer.set_data_array(result, channel_dim=None)
        writer.write(tmp_path / f"{name}.png")
        np.testing.assert_array_equal(
            read_picture(tmp_path / f"{name}.png"), read_picture(bundle_masks / f"{name}_mask.png"), err_msg=name
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.png" for name in CUTS), "postprocessing wrote files"


def test_workflow_properties_before_the_data_exist_then_run(tmp_path, monkeypatch):
    """monai.bundle.create_workflow + check_properties on each config while its data folder
    does not exist yet, in a process whose current folder is not the bundle's (as a notebook's or
    an application's); the data are made afterwards and each workflow runs."""
    import monai.data
    from monai.bundle import create_workflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # the settings check installs the bundle's
    data, images = tmp_path / "data", tmp_path / "data" / "images"
    small = {"bundle_root": str(BUNDLE), "spatial_size": 64, "batch_size": 4, "num_workers": 0, "device": "cpu"}
    cases = {
        "train": ("train", dict(dataset_dir=str(data), output_dir=str(tmp_path / "train"), num_epochs=1, **small)),
        "inference": ("inference", dict(input_dir=str(images), output_dir=str(tmp_path / "pred"), **small)),
        "evaluate": ("inference", dict(dataset_dir=str(data), output_dir=str(tmp_path / "eval"), **small)),
    }
    workflows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's warning about parsing configs that run code
        for config, (workflow_type, settings) in cases.items():
            workflow = create_workflow(
                workflow_type=workflow_type,
                config_file=str(BUNDLE / "configs" / f"{config}.yaml"),
                logging_file=False,
                **settings,
            )
            assert workflow.check_properties() == [], config
            workflows[config] = workflow
    assert not data.exists()

    run([PY, "-m", "prepare", "synthetic", "--out", str(data), "--num-images", "10", "--size", "64"], cwd=BUNDLE.parent)
    try:
        for workflow in workflows.values():
            workflow.run()
            workflow.finalize()
    finally:
        monai.data.set_track_meta(True)  # training switches metadata off for the process
    assert (tmp_path / "train" / "model.pt").is_file()
    assert len(list((tmp_path / "pred").glob("*_mask.png"))) == 10
    with open(tmp_path / "eval" / "metrics.csv") as f:
        assert {"dsc", "isic_jaccard", "isic_threshold_jaccard"} <= set(dict(csv.reader(f)))


@pytest.mark.slow
def test_isic_metrics_agree_with_the_challenge_scorer(lesions, tmp_path):
    """evaluate.yaml's isic_jaccard and isic_threshold_jaccard, and inference.yaml's
    _segmentation masks scored by ISIC's own scorer (isic-challenge-scoring)."""
    from isic_challenge_scoring.segmentation import SegmentationScore

    data = tmp_path / "isic"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    test = []
    # original sizes differ from each other and from the network's 256 x 256
    for number, (name, size) in enumerate([("square", None), ("wide", (300, 180)), ("tall", (150, 260)), ("wide", None)]):
        image, truth = Image.open(lesions / "images" / f"{name}.png"), Image.open(lesions / "truth" / f"{name}.png")
        if size:
            image, truth = image.resize(size, Image.Resampling.BILINEAR), truth.resize(size, Image.Resampling.NEAREST)
        if number == 3:  # a wrong ground truth: the lesion moved, Jaccard below 0.65, counted as 0
            truth = Image.fromarray(np.roll(np.asarray(truth), 25, axis=1))
        stem = f"ISIC_{number:07d}"
        image.save(data / "images" / f"{stem}.png")
        truth.save(data / "masks" / f"{stem}_segmentation.png")
        test.append({"image": f"images/{stem}.png", "label": f"masks/{stem}_segmentation.png"})
    (data / "datalist.json").write_text(json.dumps({"test": test}))

    common = ["--num_workers", "0", "--overlay_max_size", "0"]
    bundle("run", *EVALUATE, "--dataset_dir", str(data), "--output_dir", str(tmp_path / "eval"), *common)
    bundle(
        "run",
        *INFER,
        "--input_dir",
        str(data / "images"),
        "--output_dir",
        str(tmp_path / "submission"),
        "--mask_suffix",
        "_segmentation",
        *common,
    )
    assert sorted(p.name for p in (tmp_path / "submission").iterdir()) == sorted(Path(c["label"]).name for c in test)

    score = SegmentationScore.from_dir(data / "masks", tmp_path / "submission").macro_average
    with open(tmp_path / "eval" / "metrics.csv") as f:
        ours = {row[0]: float(row[1]) for row in csv.reader(f)}
    assert 0 < score["threshold_jaccard"] < score["jaccard"], "the wrong ground truth is counted as 0"
    assert ours["isic_jaccard"] == pytest.approx(score["jaccard"], abs=1e-6)
    assert ours["isic_threshold_jaccard"] == pytest.approx(score["threshold_jaccard"], abs=1e-6)
    # evaluate writes the same masks as inference
    for case in test:
        stem = Path(case["image"]).stem
        np.testing.assert_array_equal(
            read_picture(tmp_path / "eval" / f"{stem}_mask.png"),
            read_picture(tmp_path / "submission" / f"{stem}_segmentation.png"),
        )
