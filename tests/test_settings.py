"""Every key a user gives the bundle is used or refused, and bad values stop a run at once.

Each refused command goes through monai.bundle's own command line (`fire`, as
`python -m monai.bundle run` parses it) in this process, and the bundle's exception hook
must print the problem as the last line; a few of them also run as real processes, whose
exit status and last stderr line are checked. All stop at the configs' `initialize` check.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fire
import monai.bundle
import pytest
import torch
import yaml

from commands import BUNDLE, EVALUATE, INFER, SMALL, TRAIN, bundle, child_env

sys.path.insert(0, str(BUNDLE))  # the bundle's `scripts` package, as the configs import it
sys.path.insert(0, str(BUNDLE / "commands"))  # settings_table.py is a command-line tool of the bundle
import settings_table

from scripts import setting_keys, setting_types, settings
from scripts.errors import real_error

MULTI = ["--config_file", "['configs/train.yaml','configs/multi_gpu_train.yaml']"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ---- the configs and the README (in-process, fast) ----


def test_readme_table_is_generated_from_the_configs():
    readme = setting_keys.SETTINGS_PAGE.read_text()
    assert settings_table.readme_with_table(readme) == readme, "run `python commands/settings_table.py` in bundle/"


def test_every_documented_setting_has_a_meaning_and_is_a_key_of_its_config():
    for name in ("train", "evaluate", "inference"):
        documented = settings_table.documented_settings(name)
        assert {"bundle_root", "output_dir", "ckpt_path", "num_classes", "spatial_size", "device"} <= set(documented)
        assert set(documented) <= setting_keys.config_keys(name)
    table = settings_table.settings_table()
    for name in ("train", "evaluate", "inference"):
        for key in settings_table.documented_settings(name):
            row = next(line for line in table.splitlines() if line.startswith(f"| `{key}` |"))
            assert row.split(" | ")[1].strip(), f"{key}: no meaning (the comment after the key in configs/{name}.yaml)"


def test_known_keys_come_from_the_configs(tmp_path, monkeypatch):
    """A key added to a config is a setting at once; nothing lists the keys by hand."""
    configs = tmp_path / "configs"
    shutil.copytree(setting_keys.CONFIG_DIR, configs)
    text = (configs / "train.yaml").read_text().replace("num_epochs: 300", "num_epochs: 300\nwarmup_epochs: 5  # new")
    (configs / "train.yaml").write_text(text)
    monkeypatch.setattr(setting_keys, "CONFIG_DIR", configs)
    monkeypatch.setattr(settings_table, "CONFIG_DIR", configs)
    assert setting_keys.unknown_key_problems({"warmup_epochs"}, ["train"]) == []
    assert "warmup_epochs" in settings_table.documented_settings("train")
    (problem,) = setting_keys.unknown_key_problems({"warmup_epoch"}, ["train"])
    assert problem.startswith("warmup_epoch: no such setting in configs/train.yaml; did you mean warmup_epochs")
    # nested ids of another config count as their top-level key
    assert {"train", "validate", "network", "initialize"} <= setting_keys.config_keys("multi_gpu_train")


# ---- through `python -m monai.bundle run` ----


@pytest.fixture(scope="module")
def files(demo, tmp_path_factory) -> dict[str, Path]:
    """Files and folders the refused commands point at."""
    root = tmp_path_factory.mktemp("files")
    (root / "a_file").write_text("not a folder")
    (root / "empty").mkdir()
    (root / "no_test").mkdir()
    listed = json.loads((demo / "datalist.json").read_text())
    (root / "no_test" / "datalist.json").write_text(json.dumps({k: v for k, v in listed.items() if k != "test"}))
    (root / "extra.yaml").write_text(yaml.safe_dump({"learnig_rate": 0.01}))
    (root / "args.json").write_text(json.dumps({"num_epoch": 3}))
    weights = torch.load(BUNDLE / "models" / "model.pt", weights_only=True)
    torch.save({k: torch.full_like(v, float("nan")) for k, v in weights.items()}, root / "nan.pt")
    (root / "garbage.pt").write_bytes(b"not a checkpoint")
    return {"demo": demo, **{p.name.replace(".", "_"): p for p in root.iterdir()}}


def data_args(config: list[str], files: dict[str, Path]) -> list[str]:
    """The small demo data for ``config``, in the keys it has."""
    if config == INFER:
        return ["--input_dir", str(files["demo"] / "images"), "--spatial_size", "64", "--num_workers", "0"]
    return ["--dataset_dir", str(files["demo"]), *SMALL]


# name -> (config, extra arguments, the start of the last stderr line, text it must also hold)
REFUSED = {
    "typo": (TRAIN, ["--num_epoch", "20"], "error: num_epoch: no such setting in configs/train.yaml", "did you mean num_epochs?"),
    "typo_beside_nested_override": (
        TRAIN,
        ["--train#trainer#max_epochs", "2", "--learnig_rate", "1"],
        "error: learnig_rate:",
        "did you mean learning_rate?",
    ),
    "other_config": (
        INFER,
        ["--num_epochs", "3"],
        "error: num_epochs: not a setting of configs/inference.yaml",
        "only of configs/train.yaml",
    ),
    "extra_config_file": (
        ["--config_file", "['configs/train.yaml','{extra_yaml}']"],
        [],
        "error: learnig_rate: no such setting",
        "did you mean learning_rate?",
    ),
    "args_file": (TRAIN, ["--args_file", "{args_json}"], "error: num_epoch: no such setting", "did you mean num_epochs?"),
    "ddp_configs": (
        MULTI,
        ["--num_epoch", "1"],
        "error: num_epoch: no such setting in configs/train.yaml + configs/multi_gpu_train.yaml",
        "num_epochs",
    ),
    "spatial_size": (TRAIN, ["--spatial_size", "250"], "error: spatial_size 250: must be a positive multiple of 32", "e.g. 256"),
    "spatial_size_evaluate": (
        EVALUATE,
        ["--spatial_size", "100"],
        "error: spatial_size 100: must be a positive multiple of 32",
        "",
    ),
    "spatial_size_inference": (INFER, ["--spatial_size", "0"], "error: spatial_size 0: must be a positive multiple of 32", ""),
    "num_classes": (TRAIN, ["--num_classes", "0"], "error: num_classes 0: must be 1", "number of classes"),
    "batch_size": (EVALUATE, ["--batch_size", "0"], "error: batch_size 0: must be a positive integer", ""),
    "num_epochs": (TRAIN, ["--num_epochs", "2.5"], "error: num_epochs 2.5: must be a positive integer", ""),
    "learning_rate": (TRAIN, ["--learning_rate", "-0.1"], "error: learning_rate -0.1: must be a positive number", "0.001"),
    "val_interval": (
        TRAIN,
        ["--val_interval", "3", "--num_epochs", "2"],
        "error: val_interval 3: is above num_epochs 2",
        "model.pt would never be written",
    ),
    "num_workers": (INFER, ["--num_workers", "-1"], "error: num_workers -1: must be 0", ""),
    "compile": (INFER, ["--compile", "yes"], "error: compile yes: must be true or false", ""),
    "cpu_lanes": (EVALUATE, ["--cpu_lanes", "-2"], "error: cpu_lanes -2: must be 0 (one lane per torch thread)", "1 (one pass)"),
    "device_name": (TRAIN, ["--device", "gpu"], "error: device gpu: is not a device name", "cpu, cuda"),
    "device_unavailable": (
        INFER,
        ["--device", "cuda:7"],
        "error: device cuda:7: is not available on this machine",
        "--device cpu",
    ),
    "dataset_dir": (TRAIN, ["--dataset_dir", "{empty}"], "error: {empty}/datalist.json: no such file", "python -m prepare"),
    "datalist_split": (
        EVALUATE,
        ["--dataset_dir", "{no_test}"],
        "error: {no_test}/datalist.json: no 'test' split",
        "dataset_dir",
    ),
    "output_dir": (
        TRAIN,
        ["--output_dir", "{a_file}/runs"],
        "error: output_dir {a_file}/runs: {a_file} is a file, not a folder",
        "another output_dir",
    ),
    "output_dir_inference": (INFER, ["--output_dir", "{a_file}"], "error: output_dir {a_file}: {a_file} is a file", ""),
    "ckpt_missing": (EVALUATE, ["--ckpt_path", "{empty}/model.pt"], "error: ckpt_path {empty}/model.pt: no such file", ""),
    "ckpt_garbage": (INFER, ["--ckpt_path", "{garbage_pt}"], "error: ckpt_path {garbage_pt}: cannot be read as weights", ""),
    "ckpt_does_not_fit": (
        INFER,
        ["--num_classes", "3"],
        "error: ckpt_path ",
        "does not fit the network (check num_classes and pvm_groups)",
    ),
    "ckpt_not_finite": (TRAIN, ["--ckpt_path", "{nan_pt}"], "error: ckpt_path {nan_pt}: holds NaN or infinite weights", ""),
}


# refused by scripts.settings.check_data, the first step of `run`, not by `initialize`
DATA_CASES = {"dataset_dir", "datalist_split"}


def command(name: str, files: dict[str, Path], out: Path) -> list[str]:
    """The arguments after `python -m monai.bundle run` of the REFUSED case ``name``."""
    config, extra, _, _ = REFUSED[name]
    names = {k: str(v) for k, v in files.items()}
    return [a.format(**names) for a in [*config, *data_args(config, files), "--output_dir", str(out), *extra]]


def expected_start(name: str, files: dict[str, Path]) -> str:
    return REFUSED[name][2].format(**{k: str(v) for k, v in files.items()})


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_with_the_key_and_the_fix_on_the_last_line(files, name, tmp_path, monkeypatch, capsys):
    """Each case in this process, through monai.bundle's command line (`fire`, as
    `python -m monai.bundle` parses it) and the bundle's exception hook; the subprocess test
    below checks the same for a real process and its exit status."""
    if name == "device_unavailable" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    monkeypatch.chdir(BUNDLE)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # the check installs the bundle's; put back after
    out = tmp_path / "out"
    # `run initialize`: the configs' check and nothing more, should a case wrongly pass it; the
    # lists of files are made at the start of `run` (a config parses before its data exist)
    run_id = "run" if name in DATA_CASES else "initialize"
    with pytest.raises(Exception) as raised:  # noqa: PT011  (the test reads what the user sees, not the type)
        fire.Fire({"run": monai.bundle.run}, command=["run", run_id, *command(name, files, out), "--logging_file", "False"])
    capsys.readouterr()
    sys.excepthook(raised.type, raised.value, raised.tb)
    output = capsys.readouterr()
    line = last_line(output.err)
    assert line.startswith(expected_start(name, files)), output.err[-3000:]
    assert REFUSED[name][3] in line
    assert "Loading dataset" not in output.err, "data were read before the check"
    assert not out.exists(), "the refused run wrote into output_dir"


def test_compile_without_a_compiler_is_refused_on_the_cpu(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(BUNDLE)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++, clang++ or c++ to find
    monkeypatch.delenv("CXX", raising=False)
    args = [*INFER, *data_args(INFER, files), "--device", "cpu", "--compile", "true", "--logging_file", "False"]
    with pytest.raises(Exception) as raised:  # noqa: PT011  (the test reads what the user sees, not the type)
        fire.Fire({"run": monai.bundle.run}, command=["run", "initialize", *args])
    sys.excepthook(raised.type, raised.value, raised.tb)
    line = last_line(capsys.readouterr().err)
    assert line.startswith("error: compile True: needs a C++ compiler on the CPU") and "--compile false" in line


@pytest.mark.slow
def test_refused_processes_exit_non_zero_with_the_problem_last(files, tmp_path):
    """A few cases as real `python -m monai.bundle run` processes (two at a time)."""
    names = ["typo", "ddp_configs", "spatial_size", "device_unavailable", "ckpt_does_not_fit", "extra_config_file"]
    if torch.cuda.device_count() > 7:
        names.remove("device_unavailable")

    def start(name: str) -> subprocess.CompletedProcess:
        return bundle("run", "training", *command(name, files, tmp_path / name), check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, proc in zip(names, pool.map(start, names)):
            assert proc.returncode == 1, (name, proc.stderr[-3000:])
            assert last_line(proc.stderr).startswith(expected_start(name, files)), (name, proc.stderr[-3000:])
            assert "Traceback" not in proc.stderr, "a settings error is reported without a traceback"
            assert "Loading dataset" not in proc.stderr + proc.stdout and not (tmp_path / name).exists()


ACCEPTED = {
    "train": (
        TRAIN,
        ["--train#trainer#max_epochs", "2", "--optimizer#weight_decay", "0", "--network_def#channels", "[8,16,24,32,48,64]"],
    ),
    "evaluate": (EVALUATE, ["--dataloader#shuffle", "False"]),  # its network_def is a macro of train.yaml's
    "inference": (INFER, ["--network_def#channels", "[8,16,24,32,48,64]"]),
    "multi_gpu_train": (MULTI, ["--train#trainer#max_epochs", "2", "--validate#dataloader#num_workers", "0"]),
}


def accepted_command(name: str, files: dict[str, Path], out: Path) -> list[str]:
    """`run initialize` (the configs' check and nothing more) with every documented setting and nested overrides."""
    config, nested = ACCEPTED[name]
    documented = settings_table.documented_settings("train" if name == "multi_gpu_train" else name)
    values = {
        "dataset_dir": str(files["demo"]),
        "output_dir": str(out),
        "input_dir": str(files["demo"] / "images"),
        "spatial_size": "64",
        "num_workers": "0",
        "num_epochs": "2",
        "device": "cpu",
        "ckpt_path": "None" if name in ("train", "multi_gpu_train") else str(BUNDLE / "models" / "model.pt"),
    }
    args = [item for key in documented for item in (f"--{key}", values.get(key, documented[key][0]))]
    return ["run", "initialize", *config, *args, *nested]


@pytest.mark.parametrize("name", ["train", "evaluate", "inference"])
def test_every_documented_setting_and_nested_overrides_are_accepted(files, name, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(BUNDLE)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    command = [*accepted_command(name, files, tmp_path / "out"), "--logging_file", "False"]  # keep pytest's logging
    with caplog.at_level(logging.INFO, logger="scripts.settings"):
        fire.Fire({"run": monai.bundle.run}, command=command)
    assert f"settings checked against configs/{name}.yaml" in caplog.text


@pytest.mark.slow
def test_the_ddp_configs_accept_every_documented_setting(files, tmp_path):
    """The two configs of the DDP command, as one process of one (the environment torchrun sets)."""
    ddp = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    proc = bundle(*accepted_command("multi_gpu_train", files, tmp_path / "out"), check=False, env=child_env(**ddp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "settings checked against configs/train.yaml, configs/multi_gpu_train.yaml" in proc.stdout


# ---- each documented setting typed alone, as a user types it ----


def typed_forms(key: str, default: object) -> list[str]:
    """What a user types for ``key``, whose default evaluates to ``default``: the default itself
    as text (a device as its name, a flag as true/false, no value as null), every device form,
    both flag values, and null where the setting takes it."""
    if isinstance(default, torch.device):
        return ["cpu", "cuda", "cuda:1"]
    if isinstance(default, bool):
        return ["true", "false"]
    forms = ["null"] if default is None else [str(default)]
    if key in setting_types.NULLABLE and default is not None:
        forms.append("null")
    return forms


def typed_alone_cases() -> list[tuple[str, str, str]]:
    """(config, key, typed value) for every key of every config's settings block."""
    cases = []
    for name in setting_keys.config_names():
        documented = settings_table.documented_settings(name)
        if not documented:
            continue
        parser = monai.bundle.ConfigParser()
        parser.read_config(str(BUNDLE / "configs" / f"{name}.yaml"))
        cwd = os.getcwd()
        os.chdir(BUNDLE)  # the defaults as the bundle root sees them (relative paths)
        try:
            defaults = {key: parser.get_parsed_content(key) for key in documented}
        finally:
            os.chdir(cwd)
        cases += [(name, key, typed) for key, default in defaults.items() for typed in typed_forms(key, default)]
    return cases


def ids_the_run_uses(parser: monai.bundle.ConfigParser, run_id: str) -> list[str]:
    """The ids the expressions of ``run_id`` refer to (``@train#trainer`` in ``$@train#trainer.run()``)."""
    steps = parser[run_id]
    if isinstance(steps, str) and steps.startswith("@"):  # train.yaml's `run: '@training'`
        steps = parser[steps[1:]]
    return sorted(set(re.findall(r"@([\w#]+)", " ".join(map(str, steps)))))


@pytest.fixture(scope="module")
def bundle_copy(tmp_path_factory) -> Path:
    """The bundle's configs, scripts and weights in a temporary folder: runs with default paths write there."""
    root = tmp_path_factory.mktemp("bundle")
    for part in ("configs", "scripts", "models"):
        shutil.copytree(BUNDLE / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize(("name", "key", "typed"), typed_alone_cases())
def test_each_documented_setting_typed_alone_runs_or_is_refused_by_name(bundle_copy, name, key, typed, monkeypatch):
    """``--key value`` alone, parsed as `python -m monai.bundle run` parses it (fire): the
    configs' check, then every object the run uses, built (everything but the run itself)."""
    monkeypatch.chdir(bundle_copy)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    workflow = monai.bundle.ConfigWorkflow(
        config_file=f"configs/{name}.yaml", logging_file=False, **{key: fire.parser.DefaultParseValue(typed)}
    )
    error = None
    try:
        workflow.initialize()
        run_id = "training" if "training" in workflow.parser else "run"
        for used in ids_the_run_uses(workflow.parser, run_id):
            workflow.parser.get_parsed_content(used)
    except Exception as raised:
        error = real_error(raised)
    if error is not None:  # refused: by the settings check, naming the key typed
        # the copy's own SettingsError: its initialize imports the copy's scripts in place of the repository's
        assert isinstance(error, sys.modules["scripts.errors"].SettingsError), f"--{key} {typed}: {type(error).__name__}: {error}"
        assert str(error).startswith(f"{key} "), f"--{key} {typed}: the message names another key: {error}"


@pytest.mark.slow
def test_the_device_typed_alone_trains(files, tmp_path):
    """The command a user types: no other setting beside the device."""
    out = tmp_path / "out"
    proc = bundle(
        "run",
        "training",
        *TRAIN,
        "--dataset_dir",
        str(files["demo"]),
        "--output_dir",
        str(out),
        "--num_epochs",
        "1",
        "--spatial_size",
        "64",
        "--device",
        "cpu",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.pt").exists()


def test_the_running_config_is_found_from_its_own_expression():
    """MONAI gives a config expression no handle to its parser; scripts.settings finds it on the
    call stack. If a MONAI release evaluates expressions outside ConfigParser's methods, this
    fails here rather than inside every bundle run."""
    parser = monai.bundle.ConfigParser(
        {"probe": "$scripts.settings.running_config()"}, globals={"scripts": sys.modules["scripts"]}
    )
    assert parser.get_parsed_content("probe") is parser
    with pytest.raises(RuntimeError, match="no ConfigParser on the call stack"):
        settings.running_config()
