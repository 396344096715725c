"""Training and inference that cannot go silently wrong: fault injection through the command line.

Diverging training, a second run into a busy output_dir, kill -9 at random moments (fixed
seed) and interrupted or failing writes, on the small generated demo set of test_bundle.
"""

from __future__ import annotations

import errno
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import networks

from commands import BUNDLE, INFER, PY, SMALL, TRAIN, bundle, child_env

sys.path.insert(0, str(BUNDLE))  # the bundle's `scripts` package, as the configs import it
from scripts.atomic import PARTIAL_PREFIX, remove_partial_files, write_atomically
from scripts.errors import WriteError


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def train_command(demo: Path, out: Path, *extra: str) -> list[str]:
    data = ["--dataset_dir", str(demo), "--output_dir", str(out)]
    return [PY, "-m", "monai.bundle", "run", "training", *TRAIN, *data, *SMALL, *extra]


def assert_output_dir_is_clean(out: Path) -> None:
    """Every file loads with weights_only=True (the lock file and TensorBoard logs aside); no partial writes."""
    files = [p for p in out.iterdir() if p.is_file() and p.name != ".lock"]
    assert not [p for p in out.iterdir() if p.name.startswith(PARTIAL_PREFIX)]
    for path in files:
        assert path.suffix == ".pt", path
        torch.load(path, weights_only=True)


# ---- writes (in-process, fast) ----


def test_a_failing_write_leaves_nothing_and_names_the_file(tmp_path):
    target = tmp_path / "out" / "a_mask.png"

    def disk_full(partial: Path) -> None:
        partial.write_bytes(b"half a png")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match=r"a_mask.png: cannot write \(No space left on device\)"):
        write_atomically(target, disk_full)
    assert list(target.parent.iterdir()) == []


def test_kill_while_writing_keeps_the_previous_file(tmp_path):
    """kill -9 in the middle of a write: the final name still holds the old, complete file."""
    target = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, target)
    writer = (
        "import sys, time, torch\n"
        "from scripts.atomic import write_atomically\n"
        "def slow(partial):\n"
        "    with open(partial, 'wb') as f:\n"
        "        f.write(b'x' * 1000); f.flush(); time.sleep(60)\n"
        f"write_atomically({str(target)!r}, slow)\n"
    )
    proc = subprocess.Popen([PY, "-c", writer], cwd=BUNDLE, env=child_env())
    partial = tmp_path / f"{PARTIAL_PREFIX}{proc.pid}-model.pt"
    deadline = time.monotonic() + 120
    while not (partial.exists() and partial.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial.exists(), "the writer never started"
    torch.testing.assert_close(torch.load(target, weights_only=True)["w"], torch.ones(3))
    assert remove_partial_files(tmp_path) == [partial] and not partial.exists()


def test_the_last_line_is_the_error_inside_monais_wrappers(capsys):
    """MONAI wraps errors of config expressions and of transforms; the hook unwraps them."""
    from scripts import errors

    def raised(error: BaseException) -> BaseException:
        try:
            raise error
        except BaseException as caught:
            return caught

    write_error = WriteError("out/a_mask.png: cannot write (No space left on device); choose another output_dir")
    in_transform = RuntimeError("applying transform <SaveSegmentationd>")
    in_transform.__cause__ = raised(write_error)
    in_config = RuntimeError("Failed to evaluate ConfigExpression: \n$@evaluator.run()")
    in_config.__cause__ = raised(in_transform)
    errors._excepthook(RuntimeError, raised(in_config), None)
    assert capsys.readouterr().err == f"error: {write_error}\n"  # a BundleError: its message alone

    plain = RuntimeError("Failed to evaluate ConfigExpression: $x")
    plain.__cause__ = raised(KeyError("no such key"))
    errors._excepthook(RuntimeError, raised(plain), None)
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1] == "KeyError: 'no such key'"


# ---- training through `python -m monai.bundle run` ----


@pytest.mark.slow
def test_diverging_training_stops_at_once_and_saves_nothing(demo, tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.run(
        train_command(demo, out, "--num_epochs", "2", "--learning_rate", "1e6"),
        cwd=BUNDLE,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=600,
    )
    line = last_line(proc.stderr)
    assert proc.returncode != 0
    assert line.startswith("error: epoch 1, iteration "), proc.stderr[-3000:]
    assert "learning_rate too high (it is 1e+06" in line
    assert not list(out.glob("*.pt")), "weights of a diverged run were saved"


def nan_image(data: Path) -> None:
    """Makes the first training case of the datalist an image full of NaN."""
    datalist = json.loads((data / "datalist.json").read_text())
    nib.save(nib.Nifti1Image(np.full((64, 64), np.nan, np.float32), np.eye(4)), data / "nan.nii.gz")
    datalist["training"][0]["image"] = "nan.nii.gz"
    (data / "datalist.json").write_text(json.dumps(datalist))


@pytest.mark.slow
def test_nan_mid_run_keeps_the_last_good_checkpoint_resumable(demo, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    original = (demo / "datalist.json").read_text()
    for sub in ("images", "masks"):
        (data / sub).symlink_to(demo / sub)
    (data / "datalist.json").write_text(original)
    out = tmp_path / "runs"
    bundle("run", "training", *TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), *SMALL, "--num_epochs", "1")
    good = {p.name: p.read_bytes() for p in out.glob("*.pt")}
    assert set(good) == {"model.pt", "checkpoint_epoch=1.pt"}

    nan_image(data)
    proc = bundle(
        "run", "training", *TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), *SMALL, "--num_epochs", "2", check=False
    )
    assert proc.returncode != 0
    assert last_line(proc.stderr).startswith("error: epoch 2, iteration "), proc.stderr[-3000:]
    assert "the loss is nan" in last_line(proc.stderr)
    assert {p.name: p.read_bytes() for p in out.glob("*.pt")} == good, "a non-finite state was written"

    (data / "datalist.json").write_text(original)
    proc = bundle("run", "training", *TRAIN, "--dataset_dir", str(data), "--output_dir", str(out), *SMALL, "--num_epochs", "2")
    assert "resuming from" in proc.stdout and "checkpoint_epoch=1.pt" in proc.stdout
    assert sorted(p.name for p in out.glob("*.pt")) == ["checkpoint_epoch=2.pt", "model.pt"]
    assert_output_dir_is_clean(out)


def wait_for_lock(out: Path, log: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Until the run holds ``output_dir``'s lock: training has begun (no per-iteration log line
    to wait for: a piped log holds one line per epoch)."""
    deadline = time.monotonic() + timeout
    while not (out / ".lock").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it took the lock:\n{log.read_text()[-3000:]}"


@pytest.mark.slow
def test_a_second_run_into_a_busy_output_dir_is_refused(demo, tmp_path):
    out, log = tmp_path / "runs", tmp_path / "first.log"
    command = train_command(demo, out, "--num_epochs", "100")
    with log.open("w") as stdout:
        first = subprocess.Popen(
            command, cwd=BUNDLE, stdout=stdout, stderr=subprocess.STDOUT, env=child_env(PYTHONUNBUFFERED="1")
        )
    try:
        wait_for_lock(out, log, first)
        second = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, env=child_env(), timeout=600)
        assert first.poll() is None, "the first run ended before the second one was refused"
    finally:
        first.kill()
        first.wait()
    assert second.returncode != 0
    assert last_line(second.stderr).startswith(f"error: output_dir {out} is in use by another training run"), second.stderr[
        -2000:
    ]
    assert "Loading dataset" not in second.stderr


@pytest.mark.slow
def test_kill_9_at_random_moments_then_the_same_command_resumes_and_finishes(demo, tmp_path):
    """Three kills, each a random delay (seed 0) after the run starts: at start-up, in an epoch,
    in validation or while saving. Each restart also finds the lock file of a killed run, which
    must not block it.
    """
    out = tmp_path / "runs"
    epochs = 4
    command = train_command(demo, out, "--num_epochs", str(epochs))
    rng = random.Random(0)
    for epoch in range(1, epochs):
        log = tmp_path / f"run{epoch}.log"
        with log.open("w") as stdout:
            proc = subprocess.Popen(
                command, cwd=BUNDLE, stdout=stdout, stderr=subprocess.STDOUT, env=child_env(PYTHONUNBUFFERED="1")
            )
        wait_for_lock(out, log, proc)
        time.sleep(rng.uniform(0, 4))
        if proc.poll() is not None:  # finished (or failed) before the kill
            assert proc.returncode == 0, log.read_text()[-3000:]
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = subprocess.run(command, cwd=BUNDLE, capture_output=True, text=True, env=child_env(), timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "resuming from" in final.stdout
    checkpoints = sorted(p.name for p in out.glob("checkpoint_epoch=*.pt"))
    assert checkpoints == [f"checkpoint_epoch={epochs}.pt"], "only the newest full state remains, across restarts"
    assert_output_dir_is_clean(out)
    state = torch.load(out / f"checkpoint_epoch={epochs}.pt", weights_only=True)
    assert state["trainer"]["iteration"] == epochs * state["trainer"]["epoch_length"]
    networks.load_reference_weights(networks.UltraLightVMUNet(), out / "model.pt")


@pytest.mark.slow
def test_killed_inference_leaves_no_truncated_mask(demo, tmp_path):
    out = tmp_path / "pred"
    command = [PY, "-m", "monai.bundle", "run", *INFER, "--input_dir", str(demo / "images"), "--output_dir", str(out), *SMALL]
    proc = subprocess.Popen(command, cwd=BUNDLE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    deadline = time.monotonic() + 300
    while len(list(out.glob("*.png"))) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = [p for p in out.iterdir() if not p.name.startswith(PARTIAL_PREFIX)]
    assert written, "inference wrote nothing before the kill"
    for path in written:
        with Image.open(path) as image:
            image.load()  # a truncated PNG raises here
