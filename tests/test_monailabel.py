"""MONAI Label, for real: its server, its `monaibundle` sample app and the exported bundle.

monailabel 0.8.5 pins numpy < 2, so it lives in its own virtual environment, made by
`bash tests/setup_monailabel.sh` (default: .venv-monailabel at the repository root, or the one
ULVM_MONAILABEL_VENV names). Without it the test skips, unless ULVM_REQUIRE_MONAILABEL=1 (set by
.ci/run), which makes that a failure.

The test walks the loop MONAI Label exists for, over HTTP as its clients do: a datastore of
generated images without labels and a bundle whose weights nobody trained; /info; /infer; /train
refused while nothing is labelled; final labels saved through the datastore API; /train with a
device name that does not exist refused; /train (CPU, with a validation split) from the served
weights; /infer again, now with the trained weights, no restart; /train without a validation
split. The weights each training replaced stay in models/replaced/.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import networks

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("ULVM_MONAILABEL_VENV", REPO / ".venv-monailabel"))
MODEL = "ultralight_vmunet"
NUM_IMAGES = 8

pytestmark = pytest.mark.slow


def monailabel_command() -> Path:
    command = VENV / "bin" / "monailabel"
    if not command.exists():
        reason = f"no MONAI Label environment at {VENV}: make it with `bash tests/setup_monailabel.sh`"
        if os.environ.get("ULVM_REQUIRE_MONAILABEL") == "1":
            pytest.fail(reason + " (ULVM_REQUIRE_MONAILABEL=1: no skipping)")
        pytest.skip(reason)
    return command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


class Server:
    """A `monailabel start_server` process and the HTTP calls its clients make."""

    def __init__(self, command: Path, app: Path, studies: Path, log: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log
        port = self.url.rsplit(":", 1)[1]
        args = [str(command), "start_server", "--app", str(app), "--studies", str(studies), "--host", "127.0.0.1", "--port", port]
        args += ["--conf", "models", MODEL, "--conf", "zoo_source", "github"]
        # the monailabel script starts `python`: the one of its environment
        env = {**os.environ, "PATH": f"{command.parent}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
        with open(log, "wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 300
    ) -> bytes:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: HTTP {e.code}: {e.read()[:2000]!r}\n{self.log_tail()}") from e

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                self.info()
                return
            except (OSError, AssertionError):
                time.sleep(1)
        raise AssertionError(f"the server did not answer in {timeout} s:\n{self.log_tail()}")

    def info(self) -> dict:
        with urllib.request.urlopen(self.url + "/info/", timeout=10) as response:
            return json.loads(response.read())

    def infer(self, image_id: str) -> np.ndarray:
        png = self.request("POST", f"/infer/{MODEL}?image={image_id}&output=image")
        path = self.log.with_name(f"{image_id}_{uuid.uuid4().hex}.png")
        path.write_bytes(png)
        return np.asarray(Image.open(path))

    def save_label(self, image_id: str, label: Path) -> None:
        """PUT /datastore/label, as an annotation client saves a final label."""
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="label"; filename="{label.name}"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + label.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        query = urllib.parse.urlencode({"image": image_id, "tag": "final"})
        self.request("PUT", f"/datastore/label?{query}", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def train(self, **request) -> dict:
        """POST /train/<model> and wait for the task; returns its final status."""
        body = json.dumps({"model": MODEL, **request}).encode()
        self.request("POST", f"/train/{MODEL}", body, {"Content-Type": "application/json"})
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = json.loads(self.request("GET", "/train/?all=false&check_if_running=false"))
            if status.get("status") not in ("SUBMITTED", "RUNNING"):
                return status
            time.sleep(1)
        raise AssertionError(f"training did not finish in 600 s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The app, its bundle (with untrained weights), the datastore and a running server."""
    command = monailabel_command()
    root = tmp_path_factory.mktemp("monailabel")
    demo = ["--out", str(root / "demo"), "--num-images", str(NUM_IMAGES), "--size", "256"]
    subprocess.run([sys.executable, "-m", "prepare", "synthetic", *demo], cwd=REPO, check=True, capture_output=True)
    env = {**os.environ, "PATH": f"{command.parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [str(command), "apps", "--download", "--name", "monaibundle", "--output", str(root / "apps")],
        check=True,
        capture_output=True,
        env=env,
    )
    app = root / "apps" / "monaibundle"
    subprocess.run(
        [sys.executable, "bundle/commands/export_bundle.py", "--out", str(app / "model")],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    # weights nobody trained: what a new project starts from, and what makes the trained weights plain to see
    torch.manual_seed(0)
    untrained = app / "model" / MODEL / "models" / "model.pt"
    torch.save(networks.UltraLightVMUNet().state_dict(), untrained)

    studies = root / "studies"
    studies.mkdir()
    images = sorted((root / "demo" / "images").glob("*.png"))
    for image in images:
        (studies / image.name).write_bytes(image.read_bytes())
    masks = {image.stem: root / "demo" / "masks" / image.name for image in images}
    assert all(mask.exists() for mask in masks.values())

    server = Server(command, app, studies, root / "server.log")
    try:
        server.wait_ready()
        yield server, app / "model" / MODEL, masks, untrained.read_bytes()
    finally:
        server.stop()


def test_annotate_train_serve_loop(loop):
    server, bundle_dir, masks, untrained = loop
    first = next(iter(masks))
    label = np.asarray(Image.open(masks[first])) > 0

    info = server.info()
    assert info["models"][MODEL]["labels"] == {"lesion": 255}
    assert MODEL in info["trainers"]

    before = server.infer(first)
    assert before.shape == label.shape and set(np.unique(before)) <= {0, 255}
    assert dice(before > 0, label) < 0.6, "untrained weights should not segment the lesion"

    refused = server.train(max_epochs=1, device="cpu")
    assert refused["status"] == "ERROR"
    assert any("no cases, nothing to run on" in line for line in refused["details"]), refused["details"][-10:]

    for image_id, mask in masks.items():
        server.save_label(image_id, mask)

    refused = server.train(max_epochs=1, device="gpu")
    assert refused["status"] == "ERROR"
    assert any("device gpu" in line for line in refused["details"]), refused["details"][-10:]
    assert (bundle_dir / "models" / "model.pt").read_bytes() == untrained

    done = server.train(max_epochs=30, device="cpu", val_split=0.25)
    assert done["status"] == "DONE", done["details"][-20:]
    published = (bundle_dir / "models" / "model.pt").read_bytes()
    assert published != untrained
    replaced = sorted((bundle_dir / "models" / "replaced").glob("model_*.pt"))
    assert [path.read_bytes() for path in replaced] == [untrained], "the replaced weights must stay recoverable"
    assert (bundle_dir / "runs" / "monailabel" / "model.pt").exists()

    # no restart: the inference task reloads models/model.pt when it changes
    after = server.infer(first)
    assert dice(after > 0, label) > 0.7
    assert dice(after > 0, label) > dice(before > 0, label) + 0.2

    done = server.train(max_epochs=1, device="cpu", val_split=0)
    assert done["status"] == "DONE", done["details"][-20:]
    replaced = sorted((bundle_dir / "models" / "replaced").glob("model_*.pt"))
    assert len(replaced) == 2 and published in [path.read_bytes() for path in replaced]


def test_multi_gpu_training_publishes_from_rank_0_and_is_served(loop, tmp_path):
    """MONAI Label's multi-GPU path, which a server with several GPUs takes by default: torchrun
    over the monailabel_train.json it writes and multi_gpu_train.yaml, here two gloo processes on
    the CPU. The run is recognised as MONAI Label's (its output folder, publishing), rank 0 alone
    publishes, the exports of the replaced weights are moved aside, and the next /infer serves
    the new weights."""
    server, bundle_dir, masks, _ = loop
    for image_id, mask in masks.items():  # as in the loop above; this test also runs alone
        server.save_label(image_id, mask)
    models = bundle_dir / "models"
    served = (models / "model.pt").read_bytes()
    replaced_before = set((models / "replaced").glob("model_*.pt"))

    # run_sync: the server's process runs the task with the GPUs as given (a background task would
    # ask torch for "all" of them and find none on a CPU); it answers when torchrun has ended
    request = {"model": MODEL, "max_epochs": 2, "device": "cpu", "val_split": 0.25, "force_multi_gpu": True, "gpus": "0,1"}
    headers = {"Content-Type": "application/json"}
    server.request("POST", f"/train/{MODEL}?run_sync=true", json.dumps(request).encode(), headers, timeout=900)
    assert "--nproc_per_node=2" in server.log.read_text(), "MONAI Label did not take its multi-GPU path"
    published = (models / "model.pt").read_bytes()
    assert published != served, f"nothing was published:\n{server.log_tail()}"
    assert (bundle_dir / "runs" / "monailabel" / "model.pt").read_bytes() == published
    kept = set((models / "replaced").glob("model_*.pt")) - replaced_before
    assert [path.read_bytes() for path in kept] == [served], "one rank keeps the replaced weights, once"
    assert not (models / "model.ts").exists() and not (models / "model.onnx").exists()
    assert "ckpt_export" in (models / "replaced" / "REBUILD.txt").read_text()

    first = next(iter(masks))
    image = masks[first].parent.parent / "images" / masks[first].name
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / image.name).write_bytes(image.read_bytes())
    (tmp_path / "model.pt").write_bytes(published)
    infer = ["--config_file", str(bundle_dir / "configs" / "inference.yaml"), "--bundle_root", str(bundle_dir)]
    infer += [
        "--input_dir",
        str(tmp_path / "in"),
        "--output_dir",
        str(tmp_path / "out"),
        "--ckpt_path",
        str(tmp_path / "model.pt"),
    ]
    subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *infer, "--num_workers", "0"], cwd=tmp_path, check=True, capture_output=True
    )
    expected = np.asarray(Image.open(tmp_path / "out" / f"{first}_mask.png"))
    assert (server.infer(first) == expected).mean() > 0.999, "the next /infer does not serve the published weights"
