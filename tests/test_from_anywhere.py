"""The bundle run as MONAI's clients run it: from a folder that is not the bundle's, through the
command line (`--bundle_root`) and through the workflow API, for the repository's bundle and the
exported standalone one."""

from __future__ import annotations

import csv
import shutil
import sys
import sysconfig
import warnings
from pathlib import Path

import pytest

from commands import BUNDLE, PY, REPO, SMALL, TORCHRUN, bundle, child_env, run

CONFIGS = ("train", "evaluate", "inference", "multi_gpu_train")


def config_file(root: Path, name: str) -> str:
    return str(root / "configs" / f"{name}.yaml")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    run([PY, str(BUNDLE / "commands" / "export_bundle.py"), "--out", str(out)], cwd=REPO)
    return out / "ultralight_vmunet"


def test_inference_from_another_folder_with_bundle_root(demo, trained, tmp_path):
    out = tmp_path / "out"
    bundle(
        "run",
        "--config_file",
        config_file(BUNDLE, "inference"),
        "--bundle_root",
        str(BUNDLE),
        "--input_dir",
        str(demo / "images"),
        "--output_dir",
        str(out),
        "--ckpt_path",
        str(trained[0] / "model.pt"),
        *SMALL,
        cwd=tmp_path,
    )
    assert len(list(out.glob("*_mask.png"))) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "something was written relative to the current folder"


def test_a_folder_that_is_not_the_bundle_is_named_in_one_message(demo, tmp_path):
    images = ["--input_dir", str(demo / "images"), "--output_dir", str(tmp_path / "out")]
    # no --bundle_root: the current folder is taken for the bundle
    proc = bundle("run", "--config_file", config_file(BUNDLE, "inference"), *images, cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: bundle_root {tmp_path} holds no scripts/ folder")
    assert "Traceback" not in proc.stderr

    incomplete = tmp_path / "incomplete"
    shutil.copytree(BUNDLE / "scripts", incomplete / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    (incomplete / "configs").mkdir()
    args = ["--config_file", config_file(BUNDLE, "inference"), "--bundle_root", str(incomplete), *images]
    proc = bundle("run", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: bundle_root {incomplete}: not a complete bundle folder (no configs/inference.yaml)"), last
    assert not (tmp_path / "out").exists()


def standalone(root: Path) -> tuple[list[str], dict[str, str] | None]:
    """The interpreter command and environment for the bundle at ``root``: the exported one
    without the repository's editable install (-S), its dependencies from site-packages."""
    if root == BUNDLE:
        return [PY], None
    return [PY, "-S"], child_env(PYTHONPATH=sysconfig.get_paths()["purelib"])


@pytest.mark.slow
@pytest.mark.parametrize("which", ["repository", "exported"])
def test_every_config_runs_from_another_folder(which, demo, exported, tmp_path):
    root = BUNDLE if which == "repository" else exported
    python, env = standalone(root)
    here = tmp_path / "elsewhere"
    here.mkdir()
    common = ["--bundle_root", str(root), *SMALL]

    def monai_bundle(*args: str, launcher: list[str] | None = None) -> None:
        run([*(launcher or python), "-m", "monai.bundle", "run", *args, *common], cwd=here, env=env)

    monai_bundle(
        "training",
        "--config_file",
        config_file(root, "train"),
        "--dataset_dir",
        str(demo),
        "--output_dir",
        str(tmp_path / "train"),
        "--num_epochs",
        "1",
    )
    weights = str(tmp_path / "train" / "model.pt")
    evaluate = ["--dataset_dir", str(demo), "--output_dir", str(tmp_path / "eval"), "--ckpt_path", weights]
    monai_bundle("--config_file", config_file(root, "evaluate"), *evaluate)
    with open(tmp_path / "eval" / "metrics.csv") as f:
        assert 0 <= float(dict(csv.reader(f))["dsc"]) <= 1
    infer = ["--input_dir", str(demo / "images"), "--output_dir", str(tmp_path / "pred"), "--ckpt_path", weights]
    monai_bundle("--config_file", config_file(root, "inference"), *infer)
    assert len(list((tmp_path / "pred").glob("*_mask.png"))) == 20
    configs = f"['{config_file(root, 'train')}','{config_file(root, 'multi_gpu_train')}']"
    ddp = ["--dataset_dir", str(demo), "--output_dir", str(tmp_path / "ddp"), "--num_epochs", "1"]
    monai_bundle("training", "--config_file", configs, *ddp, launcher=[TORCHRUN, "--nproc_per_node=2"])
    assert (tmp_path / "ddp" / "model.pt").is_file()
    assert sorted(p.name for p in here.iterdir()) == [], "something was written relative to the current folder"


@pytest.mark.slow
def test_workflow_api_from_another_folder_for_every_config_then_the_other_bundle(demo, exported, tmp_path, monkeypatch):
    """ConfigWorkflow and create_workflow, initialize, run and finalize for each config in one
    process whose current folder is not a bundle's: the repository's bundle, then the exported
    one (whose `scripts` must replace the first bundle's). multi_gpu_train runs last, as a
    process group of one (ignite reads the group's variables from the environment)."""
    import monai.data
    from monai.bundle import ConfigWorkflow, create_workflow

    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # the settings check installs the bundle's
    monkeypatch.setattr(sys, "path", list(sys.path))  # the configs put the bundle first on it
    small = {"spatial_size": 64, "batch_size": 4, "num_workers": 0, "device": "cpu", "logging_file": False}
    train = {"dataset_dir": str(demo), "num_epochs": 1}
    runs = []
    for root in (BUNDLE, exported):
        out = tmp_path / root.name
        runs += [
            (root, "train", "train", {**train, "output_dir": str(out / "train")}),
            (root, "evaluate", "eval", {"dataset_dir": str(demo), "output_dir": str(out / "eval")}),
            (root, "inference", "infer", {"input_dir": str(demo / "images"), "output_dir": str(out / "pred")}),
        ]
    runs.append((exported, "multi_gpu_train", "train", {**train, "output_dir": str(tmp_path / "ddp")}))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MONAI's warning about parsing configs that run code
            for root, name, workflow_type, settings in runs:
                settings = {"bundle_root": str(root), **small, **settings}
                if name == "multi_gpu_train":
                    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}.items():
                        monkeypatch.setenv(key, value)
                    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
                    monkeypatch.setenv("MASTER_PORT", "29533")
                    files = [config_file(root, "train"), config_file(root, name)]
                    workflow = ConfigWorkflow(config_file=files, workflow_type=workflow_type, **settings)
                    workflow.initialize()
                else:
                    workflow = create_workflow(config_file=config_file(root, name), workflow_type=workflow_type, **settings)
                assert workflow.check_properties() == [], (root, name)
                workflow.run()
                workflow.finalize()
                assert Path(sys.modules["scripts"].__file__).parent.parent == root, "the bundle's own helpers ran"
    finally:
        monai.data.set_track_meta(True)  # training switches metadata off for the process
    for root in (BUNDLE, exported):
        out = tmp_path / root.name
        assert (out / "train" / "model.pt").is_file() and (out / "eval" / "metrics.csv").is_file()
        assert len(list((out / "pred").glob("*_mask.png"))) == 20
    assert (tmp_path / "ddp" / "model.pt").is_file()
    assert sorted(here.iterdir()) == [], "something was written relative to the current folder"
