"""Tests of ``python -m prepare`` on tiny trees laid out exactly as the public archives unpack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from prepare import PrepareError, make_datalist
from prepare.cli import main

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 10, 8

ISIC2017 = {
    "training": ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"),
    "validation": ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth"),
    "test": ("ISIC-2017_Test_v2_Data", "ISIC-2017_Test_v2_Part1_GroundTruth"),
}
ISIC2018 = ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth")


# ---------------------------------------------------------------- tree builders


def save_image(path: Path, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    """An RGB noise image of size (width, height), in the format its extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def save_mask(path: Path, size: tuple[int, int] = (WIDTH, HEIGHT), values: tuple[int, ...] = (0, 255)) -> Path:
    """A grey mask holding every one of ``values``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.resize(np.array(values, np.uint8), (size[1], size[0]))
    Image.fromarray(pixels).save(path)
    return path


def isic_id(number: int) -> str:
    return f"ISIC_{number:07d}"


def make_isic2017(root: Path, ids: dict[str, list[int]]) -> Path:
    """ISIC 2017 folders for the given ids per subset, with superpixel files and metadata CSVs."""
    for subset, numbers in ids.items():
        image_dir, mask_dir = (root / name for name in ISIC2017[subset])
        for number in numbers:
            save_image(image_dir / f"{isic_id(number)}.jpg")
            save_image(image_dir / f"{isic_id(number)}_superpixels.png")
            save_mask(mask_dir / f"{isic_id(number)}_segmentation.png")
        (image_dir / f"{image_dir.name}_metadata.csv").write_text("image_id,age_approximate,sex\n")
    return root


def make_isic2018(root: Path, numbers: list[int]) -> Path:
    """ISIC 2018 Task 1 training folders with their LICENSE and ATTRIBUTION files."""
    image_dir, mask_dir = root / ISIC2018[0], root / ISIC2018[1]
    for number in numbers:
        save_image(image_dir / f"{isic_id(number)}.jpg")
        save_mask(mask_dir / f"{isic_id(number)}_segmentation.png")
    for folder in (image_dir, mask_dir):
        (folder / "LICENSE.txt").write_text("CC-BY-NC\n")
        (folder / "ATTRIBUTION.txt").write_text("ISIC\n")
    # What unpacking on macOS leaves behind: not an image despite the name.
    (image_dir / f"._{isic_id(numbers[0])}.jpg").write_bytes(b"\x00\x05\x16\x07")
    return root


def make_ph2(root: Path, numbers: list[int]) -> Path:
    """PH2Dataset/PH2 Dataset images/IMDxxx/... including the colour-region folders; returns PH2Dataset."""
    top = root / "PH2Dataset"
    top.mkdir(parents=True)
    (top / "PH2_dataset.txt").write_text("|| Name ||\n")
    for number in numbers:
        case = top / "PH2 Dataset images" / f"IMD{number:03d}"
        save_image(case / f"IMD{number:03d}_Dermoscopic_Image" / f"IMD{number:03d}.bmp")
        save_mask(case / f"IMD{number:03d}_lesion" / f"IMD{number:03d}_lesion.bmp")
        save_image(case / f"IMD{number:03d}_roi" / f"IMD{number:03d}_R1_Label4.bmp")
    return top


def make_folder(root: Path, names: list[str]) -> Path:
    """images/NAME.png with masks/NAME.png."""
    for name in names:
        save_image(root / "images" / f"{name}.png")
        save_mask(root / "masks" / f"{name}.png")
    return root


# ---------------------------------------------------------------- running and reading


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_datalist(out: Path) -> dict[str, list[dict[str, str]]]:
    return json.loads((out / "datalist.json").read_text())


def members(datalist: dict, key: str, out: Path) -> list[Path]:
    """The resolved image paths of one split, as MONAI would join them."""
    return [(out / entry["image"]).resolve() for entry in datalist[key]]


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` with its bytes, or None if it does not exist."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(capsys: pytest.CaptureFixture[str], out: Path, *argv: object, names: tuple[str, ...]) -> str:
    """Run a command that must fail: status 1, one 'error:' message naming ``names``, OUT untouched."""
    before = snapshot(out)
    code, stdout, err = run(capsys, *argv, "--out", out)
    assert code == 1
    assert stdout == ""
    assert err.startswith("error: ") and "Traceback" not in err
    for name in names:
        assert name in err, f"{name!r} not in {err!r}"
    assert snapshot(out) == before
    return err


# ---------------------------------------------------------------- datasets and split rules


def test_isic2017_paper_split_takes_sorted_runs_and_monai_resolves_them(tmp_path, capsys):
    from monai.data import load_decathlon_datalist

    numbers = [7, 3, 12, 1, 9, 5]  # created out of order, so listing order is not sorted order
    src = make_isic2017(tmp_path / "isic", {"training": numbers})
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "isic2017", "--src", src, "--out", out, "--split-sizes", 3, 2, 1)
    assert code == 0
    assert "training 3, validation 2, test 1" in stdout
    assert "smallest 8x10, largest 8x10" in stdout
    images = src / "ISIC-2017_Training_Data"
    expected = {"training": [1, 3, 5], "validation": [7, 9], "test": [12]}
    datalist = read_datalist(out)
    for key, ids in expected.items():
        # Relative to OUT: out and src are siblings, so every path climbs out of OUT.
        assert all(entry["image"].startswith("../isic/") for entry in datalist[key])
        loaded = load_decathlon_datalist(out / "datalist.json", data_list_key=key, base_dir=out)
        assert [Path(item["image"]) for item in loaded] == [images / f"{isic_id(n)}.jpg" for n in ids]
        assert [Path(item["label"]) for item in loaded] == [
            src / "ISIC-2017_Training_Part1_GroundTruth" / f"{isic_id(n)}_segmentation.png" for n in ids
        ]


def test_isic2017_paper_split_refuses_a_partial_archive(tmp_path, capsys):
    src = make_isic2017(tmp_path / "isic", {"training": [1, 2, 3]})
    assert_refused(capsys, tmp_path / "out", "isic2017", "--src", src, names=("2000", "found 3", str(src), "--split-sizes"))


def test_split_sizes_must_match_the_archive(tmp_path, capsys):
    src = make_isic2017(tmp_path / "isic", {"training": [1, 2, 3]})
    argv = ["isic2017", "--src", src, "--split-sizes", 2, 1, 1]
    assert_refused(capsys, tmp_path / "out", *argv, names=("--split-sizes 2 1 1 needs 4 images, found 3",))


def test_isic2017_official_split_uses_the_official_folders(tmp_path, capsys):
    ids = {"training": [4, 2, 8, 6], "validation": [11, 10], "test": [23, 21, 22]}
    src = make_isic2017(tmp_path / "isic", ids)
    out = tmp_path / "out"
    assert run(capsys, "isic2017", "--src", src, "--out", out, "--split", "official")[0] == 0
    datalist = read_datalist(out)
    for key, numbers in ids.items():
        folder = (src / ISIC2017[key][0]).resolve()
        assert members(datalist, key, out) == [folder / f"{isic_id(n)}.jpg" for n in sorted(numbers)]


def test_isic2018_paper_split_ignores_license_files(tmp_path, capsys):
    src = make_isic2018(tmp_path / "isic2018", [40, 10, 30, 20])
    out = tmp_path / "out"
    assert run(capsys, "isic2018", "--src", src, "--out", out, "--split-sizes", 2, 1, 1)[0] == 0
    folder = (src / ISIC2018[0]).resolve()
    datalist = read_datalist(out)
    assert members(datalist, "training", out) == [folder / f"{isic_id(n)}.jpg" for n in (10, 20)]
    assert members(datalist, "validation", out) == [folder / f"{isic_id(30)}.jpg"]
    assert members(datalist, "test", out) == [folder / f"{isic_id(40)}.jpg"]


def test_isic2018_paper_split_needs_2594_images(tmp_path, capsys):
    src = make_isic2018(tmp_path / "isic2018", [1, 2])
    assert_refused(capsys, tmp_path / "out", "isic2018", "--src", src, names=("2594", "found 2"))


@pytest.mark.parametrize("inner", [False, True], ids=["folder-above", "PH2-Dataset-images"])
def test_ph2_is_all_test_from_either_folder(tmp_path, capsys, inner):
    top = make_ph2(tmp_path, [17, 2, 9])
    src = top / "PH2 Dataset images" if inner else top
    out = tmp_path / "out"
    assert run(capsys, "ph2", "--src", src, "--out", out, "--split-sizes", 0, 0, 3)[0] == 0
    datalist = read_datalist(out)
    assert datalist["training"] == [] and datalist["validation"] == []
    cases = (top / "PH2 Dataset images").resolve()
    assert members(datalist, "test", out) == [
        cases / f"IMD{n:03d}" / f"IMD{n:03d}_Dermoscopic_Image" / f"IMD{n:03d}.bmp" for n in (2, 9, 17)
    ]
    assert datalist["test"][0]["label"].endswith("IMD002/IMD002_lesion/IMD002_lesion.bmp")


def test_ph2_paper_split_needs_200_cases(tmp_path, capsys):
    top = make_ph2(tmp_path, [1, 2])
    assert_refused(capsys, tmp_path / "out", "ph2", "--src", top, names=("200", "found 2"))


def test_folder_matches_suffixes_and_extensions_in_any_case(tmp_path, capsys):
    src = tmp_path / "mine"
    pairs = {
        "a.png": "a.png",
        "b.JPG": "b_segmentation.png",
        "c.jpeg": "c_mask.png",
        "d.bmp": "d_lesion.bmp",
        "e.tif": "e.tiff",
        "f.TIFF": "f_mask.PNG",
    }
    for image, mask in pairs.items():
        save_image(src / "images" / image)
        save_mask(src / "masks" / mask)
    (src / "images" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert run(capsys, "folder", "--src", src, "--out", out, "--fractions", 1, 0, 0)[0] == 0
    found = {Path(e["image"]).name: Path(e["label"]).name for e in read_datalist(out)["training"]}
    assert found == pairs


def test_folder_random_split_depends_only_on_seed_and_fractions(tmp_path, capsys):
    src = make_folder(tmp_path / "mine", [f"case{n:02d}" for n in range(20)])
    runs = {}
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        out = tmp_path / name
        assert run(capsys, "folder", "--src", src, "--out", out, "--seed", seed, "--fractions", 0.7, 0.1, 0.2)[0] == 0
        runs[name] = read_datalist(out)
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]
    for datalist in runs.values():
        names = {key: {Path(e["image"]).name for e in datalist[key]} for key in datalist}
        assert [len(names[k]) for k in ("training", "validation", "test")] == [14, 2, 4]
        assert names["training"] | names["validation"] | names["test"] == {f"case{n:02d}.png" for n in range(20)}


def test_folder_default_split_is_frozen(tmp_path, capsys):
    # The default split (seed 42, 0.7/0.1/0.2) must never change between releases.
    src = make_folder(tmp_path / "mine", [f"case{n}" for n in range(10)])
    out = tmp_path / "out"
    assert run(capsys, "folder", "--src", src, "--out", out)[0] == 0
    datalist = read_datalist(out)
    names = {key: [Path(e["image"]).stem for e in datalist[key]] for key in datalist}
    assert names == FROZEN_DEFAULT_SPLIT


# Ordered by sha256(b"42:caseN.png"), then cut 7/1/2.
FROZEN_DEFAULT_SPLIT = {
    "training": ["case0", "case1", "case3", "case4", "case5", "case7", "case9"],
    "validation": ["case6"],
    "test": ["case2", "case8"],
}


def test_masks_of_value_one_and_one_bit_masks_are_accepted(tmp_path, capsys):
    src = tmp_path / "mine"
    save_image(src / "images" / "a.png")
    save_mask(src / "masks" / "a.png", values=(0, 1))
    save_image(src / "images" / "b.png")
    Image.fromarray(np.resize(np.array([False, True]), (HEIGHT, WIDTH))).save(src / "masks" / "b.png")
    assert Image.open(src / "masks" / "b.png").mode == "1"
    assert run(capsys, "folder", "--src", src, "--out", tmp_path / "out")[0] == 0


def test_colour_masks_are_accepted_only_when_grey(tmp_path, capsys):
    src = make_folder(tmp_path / "mine", ["a", "b"])
    grey = np.resize(np.array([0, 255], np.uint8), (HEIGHT, WIDTH))
    Image.fromarray(np.dstack([grey, grey, grey])).save(src / "masks" / "a.png")
    assert run(capsys, "folder", "--src", src, "--out", tmp_path / "out")[0] == 0
    Image.fromarray(np.dstack([grey, grey, 255 - grey])).save(src / "masks" / "b.png")
    assert_refused(
        capsys,
        tmp_path / "out2",
        "folder",
        "--src",
        src,
        names=("colour channels differ (1):\n  " + str(src / "masks" / "b.png"),),
    )


def test_python_api_returns_what_it_wrote(tmp_path):
    src = make_folder(tmp_path / "mine", ["a", "b"])
    save_image(src / "images" / "c.png", size=(30, 20))
    save_mask(src / "masks" / "c.png", size=(30, 20))
    prepared = make_datalist("folder", src, tmp_path / "out", fractions=(0, 0, 1))
    assert prepared.path == tmp_path / "out" / "datalist.json"
    assert prepared.datalist == read_datalist(tmp_path / "out")
    assert (prepared.smallest, prepared.largest) == ((8, 10), (20, 30))
    with pytest.raises(PrepareError, match="already exists"):
        make_datalist("folder", src, tmp_path / "out")


# ---------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_binary_and_resolvable(tmp_path, capsys):
    from monai.data import load_decathlon_datalist

    args = ("synthetic", "--num-images", 6, "--size", 64, "--seed", 3)
    first, second, other = tmp_path / "first", tmp_path / "second", tmp_path / "other"
    assert run(capsys, *args, "--out", first)[0] == 0
    assert run(capsys, *args, "--out", second)[0] == 0
    assert run(capsys, "synthetic", "--num-images", 6, "--size", 64, "--seed", 4, "--out", other)[0] == 0
    files = snapshot(first)
    assert files == snapshot(second)
    assert len(files) == 13  # 6 images, 6 masks, the datalist
    assert snapshot(other)["images/synthetic_0000.png"] != files["images/synthetic_0000.png"]

    datalist = read_datalist(first)
    assert [len(datalist[k]) for k in ("training", "validation", "test")] == [4, 1, 1]
    for key in ("training", "validation", "test"):
        for item in load_decathlon_datalist(first / "datalist.json", data_list_key=key, base_dir=first):
            image, mask = Image.open(item["image"]), Image.open(item["label"])
            assert (image.mode, image.size, mask.size) == ("RGB", (64, 64), (64, 64))
            values = set(np.unique(np.asarray(mask)).tolist())
            assert values == {0, 255}, item["label"]  # always a lesion, always some skin


def test_synthetic_refuses_to_mix_with_earlier_files(tmp_path, capsys):
    out = tmp_path / "demo"
    assert run(capsys, "synthetic", "--num-images", 3, "--size", 32, "--out", out)[0] == 0
    (out / "datalist.json").unlink()
    assert_refused(capsys, out, "synthetic", "--num-images", 2, "--size", 32, names=(str(out / "images"), "--overwrite"))
    code = run(capsys, "synthetic", "--num-images", 2, "--size", 32, "--out", out, "--overwrite")[0]
    assert code == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["synthetic_0000.png", "synthetic_0001.png"]


# ---------------------------------------------------------------- bad input


def test_missing_mask_is_named(tmp_path, capsys):
    src = make_isic2018(tmp_path / "isic2018", [1, 2, 3])
    (src / ISIC2018[1] / "ISIC_0000002_segmentation.png").unlink()
    argv = ["isic2018", "--src", src, "--split-sizes", 1, 1, 1]
    assert_refused(capsys, tmp_path / "out", *argv, names=("images without a mask (1)", "ISIC_0000002.jpg", "_segmentation"))


def test_mask_without_image_is_named(tmp_path, capsys):
    src = make_isic2018(tmp_path / "isic2018", [1, 2, 3])
    (src / ISIC2018[0] / "ISIC_0000003.jpg").unlink()
    argv = ["isic2018", "--src", src, "--split-sizes", 1, 1, 0]
    assert_refused(capsys, tmp_path / "out", *argv, names=("masks without an image (1)", "ISIC_0000003_segmentation.png"))


def test_many_bad_files_are_counted_and_the_first_few_named(tmp_path, capsys):
    src = make_isic2018(tmp_path / "isic2018", list(range(1, 11)))
    for number in range(3, 11):
        (src / ISIC2018[1] / f"{isic_id(number)}_segmentation.png").unlink()
    err = assert_refused(
        capsys,
        tmp_path / "out",
        "isic2018",
        "--src",
        src,
        "--split-sizes",
        8,
        1,
        1,
        names=("(8):", "... and 3 more", *(f"{isic_id(n)}.jpg" for n in range(3, 8))),
    )
    assert f"{isic_id(8)}.jpg" not in err


def test_truncated_jpeg_is_named_even_if_pil_was_told_to_accept_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as some training code sets it
    src = make_isic2018(tmp_path / "isic2018", [1, 2])
    image = src / ISIC2018[0] / "ISIC_0000002.jpg"
    image.write_bytes(image.read_bytes()[:-10])
    assert_refused(capsys, tmp_path / "out", "isic2018", "--src", src, "--split-sizes", 1, 0, 1, names=("truncated", str(image)))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for its owner


def test_unreadable_mask_is_named(tmp_path, capsys):
    src = make_folder(tmp_path / "mine", ["a", "b"])
    (src / "masks" / "b.png").write_bytes(b"this is not a PNG")
    assert_refused(capsys, tmp_path / "out", "folder", "--src", src, names=("unreadable", str(src / "masks" / "b.png")))


def test_mask_of_another_size_is_named(tmp_path, capsys):
    src = make_folder(tmp_path / "mine", ["a", "b"])
    save_mask(src / "masks" / "a.png", size=(WIDTH - 1, HEIGHT))
    assert_refused(
        capsys, tmp_path / "out", "folder", "--src", src, names=("another size", str(src / "images" / "a.png"), "8x10", "8x9")
    )


def test_non_binary_mask_reports_its_values(tmp_path, capsys):
    src = make_folder(tmp_path / "mine", ["a", "b", "c"])
    save_mask(src / "masks" / "b.png", values=(0, 128, 255))
    save_mask(src / "masks" / "c.png", values=tuple(range(0, 256, 5)))  # like a mask saved as JPEG
    assert_refused(
        capsys,
        tmp_path / "out",
        "folder",
        "--src",
        src,
        names=(
            "not binary",
            f"{src / 'masks' / 'b.png'} has 3 values: 0, 128, 255",
            f"{src / 'masks' / 'c.png'} has 52 values: 0, 5, 10, 15, ..., 240, 245, 250, 255",
        ),
    )


def test_ambiguous_masks_are_named(tmp_path, capsys):
    src = make_folder(tmp_path / "mine", ["a", "b"])
    save_mask(src / "masks" / "a_mask.png")
    assert_refused(capsys, tmp_path / "out", "folder", "--src", src, names=("several candidate masks", "a_mask.png"))


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("isic2017", "ISIC-2017_Training_Data"),
        ("isic2018", "ISIC2018_Task1-2_Training_Input"),
        ("ph2", "PH2 Dataset images"),
        ("folder", "'images'"),
    ],
)
def test_wrong_source_folder_says_what_was_expected(tmp_path, capsys, dataset, expected):
    src = tmp_path / "downloads"
    (src / "something_else").mkdir(parents=True)
    assert_refused(capsys, tmp_path / "out", dataset, "--src", src, names=(expected, str(src)))


def test_empty_image_folder_is_refused(tmp_path, capsys):
    src = tmp_path / "mine"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    assert_refused(capsys, tmp_path / "out", "folder", "--src", src, names=("no images in", str(src / "images")))


def test_missing_source_is_refused(tmp_path, capsys):
    nowhere = tmp_path / "nowhere"
    assert_refused(capsys, tmp_path / "out", "folder", "--src", nowhere, names=(f"--src {nowhere} is not",))


def test_existing_datalist_is_kept_unless_overwrite(tmp_path, capsys):
    src = make_folder(tmp_path / "mine", ["a", "b", "c"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "datalist.json").write_text('{"training": []}\n')
    assert_refused(capsys, out, "folder", "--src", src, names=(str(out / "datalist.json"), "--overwrite"))
    assert run(capsys, "folder", "--src", src, "--out", out, "--overwrite")[0] == 0
    assert sum(len(v) for v in read_datalist(out).values()) == 3
    assert sorted(p.name for p in out.iterdir()) == ["datalist.json"]  # no temporary file left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("isic2018", "--split", "official"), "--split official is not available for isic2018"),
        (("isic2017", "--fractions", 0.5, 0.25, 0.25), "--fractions only applies to --split random"),
        (("isic2017", "--seed", 1), "--seed only applies"),
        (("folder", "--split-sizes", 1, 1, 1), "--split-sizes only applies to --split paper"),
        (("folder", "--fractions", 0.5, 0.5, 0.5), "add up to 1"),
        (("folder", "--num-images", 3), "only apply to synthetic"),
    ],
)
def test_misused_options_are_refused(tmp_path, capsys, argv, message):
    src = make_folder(tmp_path / "mine", ["a"])
    assert_refused(capsys, tmp_path / "out", *argv, "--src", src, names=(message,))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--src", "."), "takes no --src"),
        (("--num-images", 0), "--num-images must be at least 1"),
        (("--size", 16), "--size must be at least 32"),
        (("--split", "paper"), "--split paper is not available for synthetic"),
    ],
)
def test_synthetic_refuses_bad_options(tmp_path, capsys, argv, message):
    assert_refused(capsys, tmp_path / "out", "synthetic", *argv, names=(message,))


def test_command_line_prints_only_the_summary_or_the_error(tmp_path):
    src = make_folder(tmp_path / "mine", ["a", "b", "c"])
    command = [sys.executable, "-m", "prepare", "folder", "--src", str(src)]
    done = subprocess.run([*command, "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        "training 2, validation 0, test 1",
        "image size (HxW): smallest 8x10, largest 8x10",
    ]
    assert done.stderr == ""
    (src / "masks" / "a.png").unlink()
    failed = subprocess.run([*command, "--out", str(tmp_path / "out2")], cwd=REPO, capture_output=True, text=True)
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr
    assert str(src / "images" / "a.png") in failed.stderr


def test_help_documents_layouts_splits_and_paths(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for fragment in (
        "ISIC-2017_Training_Data",
        "PH2 Dataset images",
        "--split-sizes",
        "load_decathlon_datalist",
        "relative to OUT",
        "sorted file-name order",
    ):
        assert fragment in text


# ---------------------------------------------------------------- copies in other layouts


def save_side_by_side(path: Path, mask: np.ndarray, image: np.ndarray) -> Path:
    """One file with the mask (grey, as RGB) in the left half and the photograph in the right half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    combined = np.concatenate([np.repeat(mask[..., None], 3, axis=2), image], axis=1)
    Image.fromarray(combined).save(path, quality=90)
    return path


def test_side_by_side_copy_unpacks_to_the_layout_of_the_isic2018_command(tmp_path, capsys):
    from prepare.side_by_side import main as unpack

    masks, images = {}, {}
    src = tmp_path / "copy"
    # The copy's own train/valid/test folders are not the paper's split: every case is pooled.
    for folder, numbers in {"train_cleaned": [30, 10], "valid": [40], "test": [20]}.items():
        for number in numbers:
            mask = np.zeros((16, 24), np.uint8)
            mask[4:12, 6 : 6 + number // 5] = 255
            masks[number], images[number] = mask, np.full((16, 24, 3), number * 5, np.uint8)
            save_side_by_side(src / folder / f"{isic_id(number)}_0.jpg", mask, images[number])
    official = tmp_path / "official"
    assert unpack(["--src", str(src), "--out", str(official)]) == 0
    for number, mask in masks.items():
        written = np.asarray(Image.open(official / ISIC2018[1] / f"{isic_id(number)}_segmentation.png"))
        assert set(np.unique(written)) <= {0, 255}
        assert (written == mask).mean() > 0.98  # JPEG ringing at the edges is thresholded away
        photo = np.asarray(Image.open(official / ISIC2018[0] / f"{isic_id(number)}.png"))
        assert photo.shape == (16, 24, 3) and np.abs(photo.astype(int) - images[number]).max() <= 3
    out = tmp_path / "out"
    capsys.readouterr()
    assert run(capsys, "isic2018", "--src", official, "--out", out, "--split-sizes", 2, 1, 1)[0] == 0
    datalist = read_datalist(out)
    folder = (official / ISIC2018[0]).resolve()
    assert members(datalist, "training", out) == [folder / f"{isic_id(n)}.png" for n in (10, 20)]
    assert members(datalist, "test", out) == [folder / f"{isic_id(40)}.png"]


def test_side_by_side_names_every_bad_file_and_writes_nothing(tmp_path, capsys):
    from prepare.side_by_side import main as unpack

    src = tmp_path / "copy"
    save_side_by_side(src / "train" / f"{isic_id(1)}_0.jpg", np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8))
    good = save_side_by_side(src / "train" / f"{isic_id(2)}_0.jpg", np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8))
    (src / "train" / f"{isic_id(3)}_0.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    Image.new("RGB", (9, 8)).save(src / "train" / f"{isic_id(4)}_0.png")
    (src / "train" / f"{isic_id(5)}_0.jpg").write_text("not an image")
    out = tmp_path / "official"
    assert unpack(["--src", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "3 of 5 side-by-side files are unusable" in err
    for number in (3, 4, 5):
        assert f"{isic_id(number)}_0" in err
    assert snapshot(out) in (None, {})
    # The same id in two folders is refused before any decoding.
    save_side_by_side(src / "valid" / f"{isic_id(1)}_0.jpg", np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8))
    assert unpack(["--src", str(src), "--out", str(out)]) == 1
    assert "ISIC ids found in several files" in capsys.readouterr().err


def test_ph2_copy_with_two_formats_of_each_mask_needs_mask_ext(tmp_path, capsys):
    top = make_ph2(tmp_path, [1, 2])
    for number in (1, 2):
        lesion = top / "PH2 Dataset images" / f"IMD{number:03d}" / f"IMD{number:03d}_lesion"
        Image.open(lesion / f"IMD{number:03d}_lesion.bmp").save(lesion / f"IMD{number:03d}_lesion.jpg")
    out = tmp_path / "out"
    err = assert_refused(capsys, out, "ph2", "--src", top, "--split-sizes", 0, 0, 2, names=("--mask-ext .bmp",))
    assert ".jpg" in err
    assert run(capsys, "ph2", "--src", top, "--out", out, "--split-sizes", 0, 0, 2, "--mask-ext", "BMP")[0] == 0
    assert [entry["label"][-4:] for entry in read_datalist(out)["test"]] == [".bmp", ".bmp"]
    assert_refused(capsys, tmp_path / "out2", "ph2", "--src", top, "--mask-ext", "txt", names=("--mask-ext txt",))


def test_folder_of_nifti_images_and_masks_is_read_as_the_bundle_reads_it(tmp_path, capsys):
    import nibabel as nib

    affine = np.eye(4)
    for name in ("a", "b", "c"):
        # NIfTI's first axis is x: a 10-wide, 8-high image is stored (10, 8)
        image = np.random.default_rng(0).integers(0, 4096, (WIDTH, HEIGHT), dtype=np.int16)
        mask = np.zeros((WIDTH, HEIGHT), np.uint8)
        mask[2:6, 3:5] = 1
        (tmp_path / "src" / "images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / "masks").mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(image, affine), tmp_path / "src" / "images" / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(mask, affine), tmp_path / "src" / "masks" / f"{name}_mask.nii.gz")
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "folder", "--src", tmp_path / "src", "--out", out, "--fractions", 1, 0, 0)
    assert code == 0 and f"smallest {HEIGHT}x{WIDTH}" in stdout
    assert [Path(e["label"]).name for e in read_datalist(out)["training"]] == ["a_mask.nii.gz", "b_mask.nii.gz", "c_mask.nii.gz"]
    # a NIfTI mask that is not binary is refused like any other
    nib.save(nib.Nifti1Image(np.full((WIDTH, HEIGHT), 7, np.uint8), affine), tmp_path / "src" / "masks" / "b_mask.nii.gz")
    assert_refused(capsys, tmp_path / "out2", "folder", "--src", tmp_path / "src", names=("b_mask.nii.gz", "not binary"))
