"""The browser page (web/): built with npm, served by web/serve.py, driven in a real headless
Chromium through its WebDriver (chromedriver, spoken to over HTTP with the standard library).
Its masks must agree with the PyTorch bundle's inference masks.

Needs Debian's ``chromium`` and ``chromium-driver`` and ``npm ci`` run in web/; without them
the tests skip, unless ULVM_REQUIRE_BROWSER=1 (set by .ci/run), which makes that a failure.
ULVM_WEB_SCREENSHOT=PATH saves the README's screenshot of the page there.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from commands import INFER, PY, REPO, bundle

WEB = REPO / "web"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver key of an element reference
WINDOW = (1000, 720)

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.slow


def missing_tools() -> list[str]:
    missing = []
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        missing.append("chromium and chromedriver (apt-get install -y chromium chromium-driver)")
    if not shutil.which("npm"):
        missing.append("npm (apt-get install -y npm)")
    elif not (WEB / "node_modules" / "onnxruntime-web").is_dir():
        missing.append("web/node_modules (cd web && npm ci)")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    """The few W3C WebDriver commands the test needs, sent to chromedriver on localhost."""

    def __init__(self, port: int, profile: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        options = {
            "binary": shutil.which("chromium"),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                f"--user-data-dir={profile}",
                "--no-first-run",
                "--disable-extensions",
            ],
        }
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as error:
            raise AssertionError(f"WebDriver {method} {path}: {error.read().decode()[:2000]}") from error

    def command(self, method: str, path: str, body: dict | None = None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    def script(self, source: str):
        return self.command("POST", "/execute/sync", {"script": source, "args": []})

    def pick_file(self, selector: str, path: Path) -> None:
        element = self.command("POST", "/element", {"using": "css selector", "value": selector})[ELEMENT]
        self.command("POST", f"/element/{element}/value", {"text": str(path)})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.command("GET", "/screenshot"))

    def quit(self) -> None:
        self.command("DELETE", "")


PAGE_STATE = """const mask = document.getElementById('mask'), status = document.getElementById('status');
return {status: status.textContent, file: status.dataset.file || '', source: mask.dataset.source || '',
        src: mask.getAttribute('src') || '', backend: document.getElementById('backend').textContent,
        timing: document.getElementById('timing').textContent};"""


def wait_for(browser: WebDriver, done, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = browser.script(PAGE_STATE)
        if done(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not finish in {timeout:.0f} s: {state['status']!r}")
        time.sleep(0.1)


def segment_in_page(browser: WebDriver, path: Path) -> dict:
    """Picks the file and waits until the page has finished with it: "done" or an error."""
    browser.pick_file("#image", path)
    return wait_for(browser, lambda s: s["file"] == path.name and (s["status"] == "done" or s["status"].startswith("error")))


def lesion_images(folder: Path, scratch: Path) -> list[str]:
    """Demo-set images (what the shipped model was trained on) in the sizes, formats and
    channel layouts users bring: square PNG, non-square JPEG, a large photo, gray (8 and 16 bits),
    partly transparent."""
    subprocess.run(
        [PY, "-m", "prepare", "synthetic", "--out", str(scratch), "--num-images", "3"], cwd=REPO, check=True, capture_output=True
    )
    sources = [Image.open(p).convert("RGB") for p in sorted((scratch / "images").glob("*.png"))]
    folder.mkdir()
    sources[0].save(folder / "square.png")
    sources[1].resize((517, 333), Image.BILINEAR).save(folder / "wide.jpg", quality=92)
    rng = np.random.default_rng(0)
    # grain that only reading at a reduced scale averages away, as the bundle does
    photo = np.asarray(sources[0].resize((3000, 2000), Image.BICUBIC), np.float32) + rng.normal(0, 15, (2000, 3000, 3))
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(folder / "photo.jpg", quality=90)
    sources[0].resize((1100, 800), Image.BILINEAR).convert("L").save(folder / "gray.png")  # read at 1/3 scale
    deep = np.asarray(sources[2].resize((540, 600), Image.BILINEAR).convert("L"), np.uint16) * 250 + 300
    Image.fromarray(deep).save(folder / "deep16.png")  # 16-bit gray: the browser reads 8 bits of it
    rgba = sources[1].resize((300, 240), Image.BILINEAR).convert("RGBA")
    alpha = np.linspace(255, 128, 300, dtype=np.float32)[None, :].repeat(240, 0).astype(np.uint8)  # partly transparent
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(folder / "alpha.png")
    return ["square.png", "wide.jpg", "photo.jpg", "gray.png", "deep16.png", "alpha.png"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The built page served on localhost and a headless Chromium that has it open."""
    missing = missing_tools()
    if missing:
        reason = "the browser test needs " + ", ".join(missing)
        if os.environ.get("ULVM_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (ULVM_REQUIRE_BROWSER=1: no skipping)")
        pytest.skip(reason)
    build = subprocess.run(["npm", "run", "build"], cwd=WEB, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr

    server = subprocess.Popen([PY, str(WEB / "serve.py"), "--port", "0"], stderr=subprocess.PIPE, text=True)
    driver = subprocess.Popen(
        [shutil.which("chromedriver"), f"--port={(driver_port := free_port())}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    browser = None
    try:
        line = server.stderr.readline()
        assert "serving" in line, line + server.stderr.read()
        url = line.split(" at ")[1].split()[0]
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{driver_port}/status", timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "chromedriver did not start"
                time.sleep(0.2)
        browser = WebDriver(driver_port, tmp_path_factory.mktemp("profile"))
        browser.open(url)
        state = wait_for(browser, lambda s: s["status"].startswith(("ready", "error")))
        assert state["status"].startswith("ready"), state["status"]
        logger.info("%s: %s", state["backend"], state["timing"])
        yield browser
    finally:
        if browser is not None:
            browser.quit()
        for process in (driver, server):
            process.terminate()
            process.wait(timeout=30)


def data_url_image(url: str) -> np.ndarray:
    header, _, payload = url.partition(",")
    assert header == "data:image/png;base64", header[:60]
    return np.asarray(Image.open(BytesIO(base64.b64decode(payload))).convert("L"))


def test_page_masks_agree_with_the_bundle(page, tmp_path, record_property):
    names = lesion_images(tmp_path / "in", tmp_path / "demo")
    bundle("run", *INFER, "--input_dir", str(tmp_path / "in"), "--output_dir", str(tmp_path / "torch"), "--num_workers", "0")
    agreement, found = {}, []
    for name in names:
        state = segment_in_page(page, tmp_path / "in" / name)
        assert state["status"] == "done", f"{name}: {state['status']}"
        ours = data_url_image(state["src"])
        theirs = np.asarray(Image.open(tmp_path / "torch" / f"{Path(name).stem}_mask.png"))
        size = Image.open(tmp_path / "in" / name).size
        assert ours.shape == theirs.shape == size[::-1], name
        assert set(np.unique(ours)) <= {0, 255}, name
        link = page.script(
            "const a = document.getElementById('download'); return [a.download, a.href === document.getElementById('mask').src];"
        )
        assert link == [f"{Path(name).stem}_mask.png", True], link
        agreement[name] = float((ours == theirs).mean())
        found.append((theirs > 0).mean())
        logger.info(
            "%s %s: %.4f%% of mask pixels agree; %s (%s)", name, size, 100 * agreement[name], state["timing"], state["backend"]
        )
        if name == "square.png" and os.environ.get("ULVM_WEB_SCREENSHOT"):
            Image.open(BytesIO(page.screenshot())).convert("RGB").quantize(64).save(
                os.environ["ULVM_WEB_SCREENSHOT"], optimize=True
            )
    record_property("mask_agreement", agreement)
    assert 0.02 < np.mean(found) < 0.9, "the demo model should find lesions in demo images"
    # The floor is 99 %. 8-bit images reach 99.9 %; 99.8 % still fails when the page
    # resizes large images without the bundle's reduced-scale reading (gray.png, photo.jpg).
    # 16-bit PNGs reach the browser as 8 bits: only the floor applies.
    floors = {name: 0.99 if name == "deep16.png" else 0.998 for name in names}
    assert all(agreement[name] >= floors[name] for name in names), agreement


RESOURCES = """return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
    .map((entry) => [entry.name, entry.encodedBodySize]);"""


def test_page_loads_only_its_own_files(page):
    origin = page.script("return location.origin;")
    loaded = {name: size for name, size in page.script(RESOURCES) if not name.startswith("data:")}
    assert all(name.startswith(origin + "/") for name in loaded), f"files from elsewhere: {sorted(loaded)}"
    names = {name.rsplit("/", 1)[1] for name in loaded}
    assert "model.onnx" in names and any(name.endswith(".wasm") for name in names), names
    logger.info(
        "page weight: %d bytes in %d files: %s",
        sum(loaded.values()),
        len(loaded),
        ", ".join(f"{name.rsplit('/', 1)[1] or 'index'} {size}" for name, size in loaded.items()),
    )


def test_page_says_which_files_are_not_images(page, tmp_path):
    (notes := tmp_path / "notes.txt").write_text("not an image")
    (fake := tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    for path in (notes, fake):
        state = segment_in_page(page, path)
        assert state["status"].startswith(f"error: {path.name} is not an image"), state["status"]
        assert state["src"] == "", "no mask is shown for a file that is not an image"


def test_page_segments_each_exif_orientation_as_displayed(page, tmp_path):
    """A phone photo with each EXIF orientation 1-8: the page's mask has the displayed size and
    agrees with the bundle's mask of the same file, which is also written as displayed."""
    from photos import orientation_folder

    files = orientation_folder(tmp_path / "in")
    bundle("run", *INFER, "--input_dir", str(tmp_path / "in"), "--output_dir", str(tmp_path / "torch"), "--num_workers", "0")
    upright = np.asarray(Image.open(tmp_path / "torch" / f"{files[1].stem}_mask.png"))
    for orientation, path in files.items():
        state = segment_in_page(page, path)
        assert state["status"] == "done", f"{path.name}: {state['status']}"
        ours = data_url_image(state["src"])
        theirs = np.asarray(Image.open(tmp_path / "torch" / f"{path.stem}_mask.png"))
        assert ours.shape == theirs.shape == upright.shape, (orientation, ours.shape, theirs.shape)
        assert (ours == theirs).mean() >= 0.99, orientation
