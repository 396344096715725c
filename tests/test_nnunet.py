"""UltraLight VM-UNet inside nnU-Net v2 (networks.nnunet): the class nnU-Net builds, the plans
command, and nnU-Net's own commands planning, training, predicting and choosing with it on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("nnunetv2")

from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from networks import UltraLightVMUNet
from networks.nnunet import (
    PLANS_NAME,
    NNUNetUltraLightVMUNet,
    PlansError,
    main,
    stage_strides,
    write_plans,
)

ROOT = Path(__file__).resolve().parents[1]

# nnU-Net finds a trainer by its name (-tr) by importing every module of its own trainer folder, and
# only then those under nnUNet_extTrainer. Its folder holds the Primus trainers, which import timm
# and so torchvision, and next to a CPU build of torch PyPI's torchvision (built for CUDA) fails to
# import ("operator torchvision::nms does not exist"): the search stops before nnUNet_extTrainer.
# So nnU-Net's commands run here through their own console-script entry points, in a Python that has
# put this module's trainers into nnU-Net's first trainer module, in memory, where `-tr` finds them
# as it finds nnU-Net's own. Nothing in the nnU-Net installation is written. (`python -c`, not a
# script: nnU-Net's worker processes are spawned, and a script would run again in each of them.)
LAUNCH = (
    "import sys; from importlib.metadata import entry_points; "
    "import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as first, test_nnunet; "
    "first.nnUNetTrainerTiny = test_nnunet.nnUNetTrainerTiny; "
    "first.nnUNetTrainerOneStep = test_nnunet.nnUNetTrainerOneStep; "
    "(command,) = entry_points(group='console_scripts', name=sys.argv[1]); "
    "sys.argv = sys.argv[1:]; sys.exit(command.load()())"
)


NNUNET_DEVICE = torch.device("cuda")  # the default of nnU-Net's trainers, which the subclasses keep


class nnUNetTrainerTiny(nnUNetTrainer):
    """nnU-Net's default trainer, 4 epochs of 10 iterations (the tiny dataset needs no more)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = NNUNET_DEVICE):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 4, 10, 2


class nnUNetTrainerOneStep(nnUNetTrainer):
    """nnU-Net's default trainer, one epoch of one training and one validation iteration."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = NNUNET_DEVICE):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 1, 1, 1


def ds_scales(strides: list) -> list:
    """The target scales nnU-Net's trainer derives from a configuration's strides."""
    fake_trainer = SimpleNamespace(
        enable_deep_supervision=True, configuration_manager=SimpleNamespace(pool_op_kernel_sizes=strides)
    )
    return nnUNetTrainer._get_deep_supervision_scales(fake_trainer)


# --- the network class -------------------------------------------------------------------------


@pytest.mark.parametrize(("spatial_dims", "shape"), [(2, (2, 3, 64, 96)), (3, (1, 1, 32, 64, 32))])
def test_without_deep_supervision_it_is_ultralight_vmunet(spatial_dims, shape):
    torch.manual_seed(0)
    ours = NNUNetUltraLightVMUNet(shape[1], 2, deep_supervision=False, strides=stage_strides(spatial_dims))
    torch.manual_seed(0)
    plain = UltraLightVMUNet(spatial_dims, shape[1], 2)
    assert ours.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), plain.state_dict().values()))
    x = torch.rand(shape)
    with torch.no_grad():
        assert torch.equal(ours(x), plain(x))


@pytest.mark.parametrize(("spatial_dims", "shape"), [(2, (2, 3, 64, 96)), (3, (2, 1, 32, 64, 32))])
def test_deep_supervision_gives_the_maps_nnunets_loss_expects(spatial_dims, shape):
    strides = stage_strides(spatial_dims)
    torch.manual_seed(0)
    net = NNUNetUltraLightVMUNet(shape[1], 3, deep_supervision=True, strides=strides)
    torch.manual_seed(0)
    plain = UltraLightVMUNet(spatial_dims, shape[1], 3)
    x = torch.rand(shape)
    outputs = net(x)

    scales = ds_scales(strides)  # 1, 1/2, 1/4, 1/8, 1/16: one map per scale
    assert [tuple(o.shape[2:]) for o in outputs] == [tuple(round(s * f) for s, f in zip(x.shape[2:], scale)) for scale in scales]
    assert all(o.shape[:2] == (shape[0], 3) for o in outputs)
    assert torch.allclose(outputs[0], plain(x), atol=1e-6)  # the full-size map is the network's output

    # nnU-Net's deep-supervision loss, with its weights, trains every head it weighs
    target = torch.randint(0, 3, (shape[0], 1, *shape[2:]))
    targets = [torch.nn.functional.interpolate(target.float(), size=o.shape[2:], mode="nearest-exact").long() for o in outputs]
    weights = np.array([1 / 2**i for i in range(len(scales))])
    weights[-1] = 0
    loss = DeepSupervisionWrapper(
        DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}), weights / weights.sum()
    )
    loss(outputs, targets).backward()
    heads = net.decoder.seg_layers
    assert heads[0].weight.grad.abs().sum() > 0 and heads[1].weight.grad.abs().sum() > 0
    assert heads[2].weight.grad is None  # nnU-Net gives the lowest scale weight 0, as for its own networks

    net.decoder.deep_supervision = False  # what nnU-Net's validation and predictor see
    with torch.no_grad():
        assert torch.allclose(net(x), outputs[0], atol=1e-6)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("num_classes", [2, 5])
def test_the_heads_add_75_parameters_per_class(spatial_dims, num_classes):
    def count(ds: bool) -> int:
        return sum(p.numel() for p in NNUNetUltraLightVMUNet(3, num_classes, ds, stage_strides(spatial_dims)).parameters())

    plain = sum(p.numel() for p in UltraLightVMUNet(spatial_dims, 3, num_classes).parameters())
    assert count(False) == plain and count(True) - plain == 75 * num_classes  # (16 + 24 + 32 widths + 3 biases) per class


def test_nnunets_predictor_network_loads_the_trained_weights_without_the_heads():
    strides = stage_strides(2)
    arch = {"strides": strides, "channels": [8, 16, 24, 32, 48, 64], "pvm_groups": 4}
    trained = get_network_from_plans("networks.nnunet.NNUNetUltraLightVMUNet", arch, [], 3, 2, deep_supervision=True)
    predictor = get_network_from_plans("networks.nnunet.NNUNetUltraLightVMUNet", arch, [], 3, 2, deep_supervision=False)
    assert isinstance(trained, NNUNetUltraLightVMUNet) and trained.decoder.seg_layers and not predictor.decoder.seg_layers
    predictor.load_state_dict(trained.state_dict())  # strict, as nnU-Net's predictor loads
    x = torch.rand(1, 3, 64, 64)
    trained.decoder.deep_supervision = False
    with torch.no_grad():
        assert torch.equal(predictor(x), trained(x))
    # and nnU-Net's trainer switches a network built without heads off, never on
    predictor.decoder.deep_supervision = True
    with pytest.raises(RuntimeError, match="built without it"):
        predictor(x)


@pytest.mark.parametrize(
    "strides", [[[1, 1], [2, 2], [2, 2], [2, 2], [2, 2]], [[1, 1], [2, 2], [2, 2], [2, 2], [2, 2], [1, 2]], [[1], [2]]]
)
def test_strides_other_than_the_networks_are_refused(strides):
    with pytest.raises(ValueError, match=r"strides must be the network's five 2x poolings.*python -m networks.nnunet"):
        NNUNetUltraLightVMUNet(3, 2, strides=strides)


# --- the plans ---------------------------------------------------------------------------------


def nnunet_plans(patch_3d: list = (40, 112, 100)) -> dict:
    """A hand-made nnUNetPlans.json of nnU-Net's layout: 2d, 3d_fullres, 3d_lowres and a cascade
    stage that inherits from 3d_fullres."""

    def configuration(identifier: str, patch: list, batch: int) -> dict:
        dims = len(patch)
        return {
            "data_identifier": identifier,
            "preprocessor_name": "DefaultPreprocessor",
            "batch_size": batch,
            "patch_size": list(patch),
            "median_image_size_in_voxels": [float(p) for p in patch],
            "spacing": [1.0] * dims,
            "normalization_schemes": ["ZScoreNormalization"],
            "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
            "architecture": {
                "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": {"n_stages": 4, "strides": [[1] * dims] + [[2] * dims] * 3},
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
            },
            "batch_dice": dims == 3,
        }

    return {
        "dataset_name": "Dataset990_Hand",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [40, 120, 100],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {
            "2d": configuration("nnUNetPlans_2d", [120, 100], 12),
            "3d_fullres": configuration("nnUNetPlans_3d_fullres", patch_3d, 2),
            "3d_lowres": configuration("nnUNetPlans_3d_lowres", [32, 64, 64], 2) | {"next_stage": "3d_cascade_fullres"},
            "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"},
        },
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
    }


@pytest.fixture
def preprocessed(tmp_path, monkeypatch) -> Path:
    """nnUNet_preprocessed with a planned Dataset990_Hand (its 2d data preprocessed)."""
    folder = tmp_path / "preprocessed" / "Dataset990_Hand"
    (folder / "nnUNetPlans_2d").mkdir(parents=True)
    (folder / "nnUNetPlans.json").write_text(json.dumps(nnunet_plans()))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    for unused in ("nnUNet_raw", "nnUNet_results"):
        monkeypatch.delenv(unused, raising=False)
    return folder


def test_the_command_writes_plans_that_nnunet_builds_our_network_from(preprocessed, capsys, caplog):
    assert main(["990"]) == 0
    target = preprocessed / f"{PLANS_NAME}.json"
    assert str(target) in capsys.readouterr().out
    assert {p.name for p in preprocessed.iterdir()} == {"nnUNetPlans.json", f"{PLANS_NAME}.json", "nnUNetPlans_2d"}
    assert "3d_fullres: no preprocessed data yet" in caplog.text and "nnUNetv2_preprocess -c 3d_fullres" in caplog.text

    source, ours = nnunet_plans(), json.loads(target.read_text())
    assert ours["plans_name"] == PLANS_NAME and list(ours["configurations"]) == ["2d", "3d_fullres"]
    assert {k: v for k, v in ours.items() if k not in ("plans_name", "configurations")} == {
        k: v for k, v in source.items() if k not in ("plans_name", "configurations")
    }
    manager = PlansManager(ours)
    for name, patch in (("2d", [96, 96]), ("3d_fullres", [32, 96, 96])):
        configuration, theirs = ours["configurations"][name], source["configurations"][name]
        assert configuration["patch_size"] == patch  # rounded down to multiples of 32
        # the same preprocessed data and everything else nnU-Net planned, but the network
        assert {k: v for k, v in configuration.items() if k not in ("patch_size", "architecture")} == {
            k: v for k, v in theirs.items() if k not in ("patch_size", "architecture")
        }
        cm = manager.get_configuration(name)
        assert cm.network_arch_class_name == "networks.nnunet.NNUNetUltraLightVMUNet"
        assert cm.pool_op_kernel_sizes == stage_strides(len(patch))  # what nnU-Net's deep supervision reads
        net = get_network_from_plans(
            cm.network_arch_class_name,
            cm.network_arch_init_kwargs,
            cm.network_arch_init_kwargs_req_import,
            1,
            2,
            deep_supervision=True,
        )
        assert isinstance(net, NNUNetUltraLightVMUNet) and net.spatial_dims == len(patch)
        assert len(net(torch.rand(1, 1, *patch))) == len(ds_scales(cm.pool_op_kernel_sizes))


def test_the_command_takes_other_widths_and_parallel_degree_and_configurations(preprocessed):
    assert (
        main(["Dataset990_Hand", "--channels", "8", "16", "32", "48", "64", "96", "--pvm-groups", "8", "--configurations", "2d"])
        == 0
    )
    ours = json.loads((preprocessed / f"{PLANS_NAME}.json").read_text())
    assert list(ours["configurations"]) == ["2d"]
    kwargs = ours["configurations"]["2d"]["architecture"]["arch_kwargs"]
    assert kwargs == {"strides": stage_strides(2), "channels": [8, 16, 32, 48, 64, 96], "pvm_groups": 8}
    net = NNUNetUltraLightVMUNet(3, 2, **kwargs)
    assert net.encoder4[0].mamba.d_model == 32 // 8


def test_a_patch_axis_below_32_is_refused_with_what_to_change_and_nothing_written(preprocessed, capsys):
    (preprocessed / "nnUNetPlans.json").write_text(json.dumps(nnunet_plans(patch_3d=[12, 112, 100])))
    assert main(["990"]) == 1
    err = capsys.readouterr().err
    assert str(preprocessed / "nnUNetPlans.json") in err and "'3d_fullres' has patch_size [12, 112, 100]" in err
    assert "axis 0 is below 32" in err and "at least 32 voxels along that axis" in err and "--configurations" in err
    assert {p.name for p in preprocessed.iterdir()} == {"nnUNetPlans.json", "nnUNetPlans_2d"}
    assert main(["990", "--configurations", "2d"]) == 0  # the fix the message names


def test_bad_input_names_the_file_or_option_and_the_fix(preprocessed, capsys, monkeypatch):
    assert main(["990", "--channels", "8", "16", "24", "32", "48", "62"]) == 1
    assert "--channels/--pvm-groups: pvm_groups must divide every PVM width" in capsys.readouterr().err
    assert main(["990", "--channels", "6", "16", "24", "32", "48", "64"]) == 1
    assert (
        "--channels/--pvm-groups: each of the first five entries of channels must be a multiple of 4" in capsys.readouterr().err
    )

    assert main(["991"]) == 1  # unknown id
    err = capsys.readouterr().err
    assert "no dataset '991' in nnUNet_preprocessed" in err and "nnUNetv2_plan_and_preprocess -d ID" in err
    assert main(["Dataset991_Other"]) == 1
    assert "no dataset 'Dataset991_Other'" in capsys.readouterr().err

    (preprocessed / "nnUNetPlans.json").unlink()  # preprocessed folder there, planning not run
    assert main(["990"]) == 1
    assert f"{preprocessed / 'nnUNetPlans.json'} does not exist: run nnU-Net's planning first" in capsys.readouterr().err
    with pytest.raises(PlansError, match="does not exist"):
        write_plans(preprocessed)

    monkeypatch.delenv("nnUNet_preprocessed")
    assert main(["990"]) == 1
    assert "nnUNet_preprocessed is not set" in capsys.readouterr().err
    assert [p.name for p in preprocessed.iterdir()] == ["nnUNetPlans_2d"]


# --- nnU-Net's commands, end to end on the CPU ------------------------------------------------


def nnunet(command: str, *args: str, env: dict) -> str:
    """Runs one of nnU-Net's commands as its console script would; returns its output."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH, command, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, f"{command} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture
def nnunet_env(tmp_path) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "nnUNet_raw": str(tmp_path / "raw"),
            "nnUNet_preprocessed": str(tmp_path / "preprocessed"),
            "nnUNet_results": str(tmp_path / "results"),
            # one worker each (the machine has 2 cores); nnU-Net needs at least one
            "nnUNet_n_proc_DA": "1",
            "nnUNet_def_n_proc": "1",
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(ROOT), env.get("PYTHONPATH", "")]),
        }
    )
    return env


def lesion_image(rng: np.random.Generator) -> tuple:
    """An RGB image of a random size (not a multiple of 32) with one dark elliptic lesion, and its 0/1 mask."""
    h, w = int(rng.integers(64, 100)), int(rng.integers(64, 120))
    yy, xx = np.mgrid[:h, :w]
    cy, cx, ry, rx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.15, 0.3) * h, rng.uniform(0.15, 0.3) * w
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    image = np.where(mask[..., None], (110, 70, 60), (200, 160, 140)) + rng.normal(0, 12, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask.astype(np.uint8)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.slow
def test_nnunet_trains_predicts_and_chooses_our_network_in_2d(tmp_path, nnunet_env):
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw" / "Dataset991_Lesions"
    for split, cases in (("Tr", range(10)), ("Ts", range(10, 13))):
        (raw / f"images{split}").mkdir(parents=True)
        (raw / f"labels{split}").mkdir()
        for case in cases:
            image, mask = lesion_image(rng)
            Image.fromarray(image).save(raw / f"images{split}" / f"case{case:03d}_0000.png")
            Image.fromarray(mask).save(raw / f"labels{split}" / f"case{case:03d}.png")
    dataset = {"channel_names": {"0": "R", "1": "G", "2": "B"}, "labels": {"background": 0, "lesion": 1}}
    (raw / "dataset.json").write_text(json.dumps(dataset | {"numTraining": 10, "file_ending": ".png"}))

    nnunet("nnUNetv2_plan_and_preprocess", "-d", "991", "-c", "2d", "-npfp", "1", "-np", "1", env=nnunet_env)
    ours = subprocess.run(
        [sys.executable, "-m", "networks.nnunet", "991"], env=nnunet_env, capture_output=True, text=True, check=True
    )
    assert f"{PLANS_NAME}.json: 2d (patch [" in ours.stdout
    out = nnunet(
        "nnUNetv2_train", "991", "2d", "0", "-p", PLANS_NAME, "-tr", "nnUNetTrainerTiny", "-device", "cpu", env=nnunet_env
    )
    assert "Mean Validation Dice" in out

    model = tmp_path / "results" / "Dataset991_Lesions" / f"nnUNetTrainerTiny__{PLANS_NAME}__2d"
    checkpoint = torch.load(model / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    trained = NNUNetUltraLightVMUNet(3, 2, deep_supervision=True)
    assert checkpoint["network_weights"].keys() == trained.state_dict().keys()  # our network, with its heads
    plain = UltraLightVMUNet(2, 3, 2)  # which are all that it adds
    plain.load_state_dict({k: v for k, v in checkpoint["network_weights"].items() if not k.startswith("decoder.")})
    architecture = json.loads((model / "plans.json").read_text())["configurations"]["2d"]["architecture"]
    assert architecture["network_class_name"] == "networks.nnunet.NNUNetUltraLightVMUNet"

    predictions = tmp_path / "predictions"
    nnunet(
        "nnUNetv2_predict",
        "-i",
        str(raw / "imagesTs"),
        "-o",
        str(predictions),
        "-d",
        "991",
        "-c",
        "2d",
        "-p",
        PLANS_NAME,
        "-tr",
        "nnUNetTrainerTiny",
        "-f",
        "0",
        "-device",
        "cpu",
        "-npp",
        "1",
        "-nps",
        "1",
        env=nnunet_env,
    )
    for label in sorted((raw / "labelsTs").iterdir()):
        truth, predicted = np.array(Image.open(label)), np.array(Image.open(predictions / label.name))
        assert predicted.shape == truth.shape  # each image at its own size
        assert dice(predicted == 1, truth == 1) > 0.8, label.name

    out = nnunet(
        "nnUNetv2_find_best_configuration",
        "991",
        "-p",
        PLANS_NAME,
        "-c",
        "2d",
        "-tr",
        "nnUNetTrainerTiny",
        "-f",
        "0",
        env=nnunet_env,
    )
    assert f"*Best*: nnUNetTrainerTiny__{PLANS_NAME}__2d" in out


@pytest.mark.slow
def test_nnunet_plans_and_trains_our_network_in_3d(tmp_path, nnunet_env):
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    raw = tmp_path / "raw" / "Dataset992_Blobs"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    zz, yy, xx = np.mgrid[:36, :40, :44]
    for case in range(5):
        centre = rng.uniform(12, 24, 3)
        mask = ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 < 64).astype(np.uint8)
        image = (mask * 2 + rng.normal(0, 0.5, mask.shape)).astype(np.float32)
        sitk.WriteImage(sitk.GetImageFromArray(image), str(raw / "imagesTr" / f"case{case:03d}_0000.nii.gz"))
        sitk.WriteImage(sitk.GetImageFromArray(mask), str(raw / "labelsTr" / f"case{case:03d}.nii.gz"))
    dataset = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "blob": 1}, "numTraining": 5, "file_ending": ".nii.gz"}
    (raw / "dataset.json").write_text(json.dumps(dataset))

    nnunet("nnUNetv2_plan_and_preprocess", "-d", "992", "-c", "3d_fullres", "-npfp", "1", "-np", "1", env=nnunet_env)
    subprocess.run([sys.executable, "-m", "networks.nnunet", "992"], env=nnunet_env, capture_output=True, check=True)
    plans = json.loads((tmp_path / "preprocessed" / "Dataset992_Blobs" / f"{PLANS_NAME}.json").read_text())
    assert all(size % 32 == 0 for size in plans["configurations"]["3d_fullres"]["patch_size"])
    out = nnunet(
        "nnUNetv2_train",
        "992",
        "3d_fullres",
        "0",
        "-p",
        PLANS_NAME,
        "-tr",
        "nnUNetTrainerOneStep",
        "-device",
        "cpu",
        env=nnunet_env,
    )
    assert "Mean Validation Dice" in out
    model = tmp_path / "results" / "Dataset992_Blobs" / f"nnUNetTrainerOneStep__{PLANS_NAME}__3d_fullres"
    checkpoint = torch.load(model / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["network_weights"].keys() == NNUNetUltraLightVMUNet(1, 2, True, stage_strides(3)).state_dict().keys()
