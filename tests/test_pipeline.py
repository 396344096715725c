"""The bundle's data path in pieces: decoding at reduced scale, the case cache's keys,
resizing predictions back to the source size, bounded overlays, background writing and
the epoch log line. Fast, in-process tests on images they make themselves; the end-to-end
runs are in test_bundle.py.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.background import InBackground
from scripts.caching import CaseKey
from scripts.console import EpochLog
from scripts.image_files import overlay_size
from scripts.image_io import ShrinkOnLoad, source_size
from scripts.inferers import PlainTensorInferer, place
from scripts.resampling import probabilities_to_labels
from scripts.writers import SaveSegmentationd


def photo(path: Path, width: int, height: int, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR).convert(mode).save(path)
    return path


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [
        ("big.jpg", (2000, 1500), (500, 375)),  # DCT scaling by 4: the largest keeping both sides >= 256
        ("big.png", (1000, 800), (334, 267)),  # box reduction by 3 (the last block partial)
        ("small.jpg", (300, 200), (300, 200)),  # already small: as it is
    ],
)
def test_shrink_on_load_keeps_both_sides_at_least_min_size(tmp_path, name, size, expected):
    path = photo(tmp_path / name, *size)
    with Image.open(path) as image:
        shrunk = ShrinkOnLoad(256)(image)
        assert shrunk.size == expected and shrunk.mode == "RGB"
    assert source_size(path) == size  # (W, H), MONAI's layout, from the header, not the decoded size


def test_shrink_on_load_leaves_16_bit_images_at_full_size(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray((np.arange(600 * 800).reshape(600, 800) % 60000).astype(np.uint16)).save(path)
    with Image.open(path) as image:
        assert ShrinkOnLoad(64)(image).size == (800, 600)


def test_case_key_changes_with_the_file_and_the_settings(tmp_path):
    image, label = photo(tmp_path / "a.jpg", 40, 30), photo(tmp_path / "a.png", 40, 30, "L")
    item = {"image": str(image), "label": str(label)}
    key = CaseKey({"spatial_size": 256, "num_classes": 1})
    assert key(item) == key(dict(item)) == CaseKey({"num_classes": 1, "spatial_size": 256})(item)
    assert key(item) != CaseKey({"spatial_size": 384, "num_classes": 1})(item)
    before = key(item)
    os.utime(label, ns=(os.stat(label).st_atime_ns, os.stat(label).st_mtime_ns + 10**9))  # the mask was edited
    assert key(item) != before


@pytest.mark.parametrize(
    ("channels", "source", "size"),
    [(1, 32, (70, 50)), (1, 16, (600, 800)), (3, 32, (33, 90)), (2, 8, (8, 8)), (1, 32, (32, 32)), (3, 16, (16, 16))],
)
def test_probabilities_to_labels_matches_a_full_bilinear_resize(channels, source, size):
    torch.manual_seed(0)
    probabilities = torch.rand(channels, source, source)
    if channels > 1:
        probabilities = probabilities.softmax(0)
    labels = probabilities_to_labels(probabilities, size, binary=channels == 1)
    full = F.interpolate(probabilities[None], size=size, mode="bilinear", align_corners=False)[0]
    expected = (full[0] > 0.5).numpy() * 255 if channels == 1 else full.argmax(0).numpy()
    assert labels.shape == size and labels.dtype == np.uint8
    assert np.mean(labels != expected) < 1e-4  # rounding on the 0.5 knife edge at most


@pytest.mark.parametrize("cpu_lanes", [0, 2, 3, 8])
def test_lanes_give_the_outputs_of_one_pass(cpu_lanes):
    from monai.data import MetaTensor

    from networks import UltraLightVMUNet

    torch.manual_seed(0)
    network = place(UltraLightVMUNet(spatial_dims=2, in_channels=3, out_channels=2), "cpu").eval()
    images = MetaTensor(torch.rand(5, 3, 64, 64) * 255)
    threads = torch.get_num_threads()
    with torch.no_grad():
        expected = network(images.as_tensor())
        outputs = PlainTensorInferer(cpu_lanes)(images, network)
    assert type(outputs) is torch.Tensor and outputs.shape == (5, 2, 64, 64) and not outputs.requires_grad
    torch.testing.assert_close(outputs, expected, rtol=1e-4, atol=1e-5)
    assert torch.get_num_threads() == threads  # the lanes' thread counts are their own


def test_lanes_step_aside_for_gradients_and_tuples():
    network = torch.nn.Conv2d(3, 2, 3, padding=1)
    images = torch.rand(4, 3, 8, 8)
    assert PlainTensorInferer(2)(images, network).requires_grad  # training: one pass, as SimpleInferer
    with torch.no_grad(), pytest.raises(TypeError, match="cpu_lanes 1"):
        PlainTensorInferer(2)(images, lambda x: (network(x), x))
    with pytest.raises(ValueError, match="cpu_lanes"):
        PlainTensorInferer(-1)


def test_place_puts_the_cpu_network_in_channels_last_order():
    network = place(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.GroupNorm(2, 8)), "cpu")
    assert network[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert network(torch.rand(2, 3, 16, 16)).is_contiguous(memory_format=torch.channels_last)
    compiled_later = place(torch.nn.Conv2d(3, 8, 3), "cpu", channels_last=False)  # inductor was faster without
    assert compiled_later.weight.is_contiguous()


def test_overlays_are_bounded_or_switched_off(tmp_path):
    assert overlay_size((6000, 8000), 1024) == (768, 1024)
    assert overlay_size((200, 100), 1024) == (200, 100)
    source = photo(tmp_path / "p.jpg", 1600, 1200)
    from monai.data import MetaTensor

    item = {
        "image": MetaTensor(torch.rand(3, 64, 64) * 255, meta={"filename_or_obj": str(source)}),
        "pred": torch.from_numpy(np.pad(np.full((600, 800), 255, np.uint8), ((300, 300), (400, 400))).T),
    }  # (W, H)
    SaveSegmentationd("pred", tmp_path / "bounded", overlay_max_size=400)(item)
    assert Image.open(tmp_path / "bounded" / "p_overlay.jpg").size == (400, 300)
    mask = np.asarray(Image.open(tmp_path / "bounded" / "p_mask.png"))
    assert mask.shape == (1200, 1600) and set(np.unique(mask)) == {0, 255}
    SaveSegmentationd("pred", tmp_path / "off", overlay_max_size=0)(item)
    assert sorted(p.name for p in (tmp_path / "off").iterdir()) == ["p_mask.png"]


def test_in_background_writes_everything_and_raises_failures():
    done = []
    writer = InBackground(lambda item: done.append(item["i"]), max_pending=2)
    for i in range(5):
        assert writer({"i": i}) == {"i": i}
    writer.wait()
    assert done == list(range(5))

    def fail(item):
        raise ValueError(f"cannot write {item['i']}")

    failing = InBackground(fail)
    failing({"i": 7})
    with pytest.raises(ValueError, match="cannot write 7"):
        failing.wait()


def test_epoch_log_is_one_line_per_epoch(caplog):
    from ignite.engine import Engine

    net = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    engine = Engine(lambda engine, batch: [{"loss": torch.tensor(float(batch))}])
    EpochLog(optimizer).attach(engine)
    with caplog.at_level(logging.INFO, logger="scripts.console"):
        engine.run([1.0, 2.0, 3.0], max_epochs=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "scripts.console"]
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2: train_loss 2.0000 over 3 iterations, learning rate 0.5, ")
    assert lines[1].endswith(" 0 s left")
