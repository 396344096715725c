"""The compiled CPU selective scan (``scan_backend="cpu"``): exact against the recurrence, forward
and backward; the same network output as the reference release; a clear fallback when it cannot
be built; one build shared by processes that start together."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from networks import UltraLightVMUNet, load_reference_weights
from networks.scan import compiled_cpu_available
from networks.scan.compiled_cpu import CHECKPOINT_EVERY, selective_scan_cpu

from test_selective_scan import scan_inputs, sequential_float64

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "ulvmunet_parity_seed2024.pt"

pytestmark = pytest.mark.skipif(
    not compiled_cpu_available(), reason="the compiled CPU scan did not build here (see the warning above)"
)


def gradients(scan, inputs, weights):
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    return torch.autograd.grad((scan(*inputs) * weights).sum(), inputs)


@pytest.mark.parametrize("states", [16, 5])
@pytest.mark.parametrize("length", [1, 2, 13, 61, 127, 1024, 4096])
def test_forward_matches_the_recurrence(length, states):
    inputs = scan_inputs(2, length, 10, states=states)  # 10 channels: two channel blocks
    out = selective_scan_cpu(*inputs)
    assert out.dtype == torch.float32
    assert torch.allclose(out.double(), sequential_float64(*inputs), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("states", [16, 3])
@pytest.mark.parametrize("length", [1, 5, CHECKPOINT_EVERY, 67, 131, 1024])  # within, at and across checkpoints
def test_gradients_match_float64_sequential(length, states):
    inputs64 = scan_inputs(2, length, 10, states=states, dtype=torch.float64, seed=1)
    weights = torch.randn(2, length, 10, dtype=torch.float64)
    expected = gradients(sequential_float64, inputs64, weights)
    for dtype in (torch.float32, torch.float64):
        got = gradients(selective_scan_cpu, [t.to(dtype) for t in inputs64], weights.to(dtype))
        for name, g, e in zip(["u", "delta", "A", "B", "C", "D"], got, expected):
            assert g.dtype == dtype
            assert (g.double() - e).abs().max().item() <= 1e-4 * e.abs().max().item() + 1e-6, (name, dtype)


def test_passes_gradcheck_in_float64():
    # 70 tokens cross a checkpoint, 9 channels make two channel blocks
    inputs = [t.requires_grad_() for t in scan_inputs(2, 70, 9, states=3, dtype=torch.float64, seed=2)]
    assert torch.autograd.gradcheck(selective_scan_cpu, inputs)


def test_strong_decay_stays_finite_and_exact():
    u, delta, A, B, C, D = scan_inputs(2, 700, 4, seed=4)
    inputs = (u, delta * 50, A * 10, B, C, D)  # decays down to exp(-8000): far below float32's range
    weights = torch.randn(2, 700, 4)
    out = selective_scan_cpu(*inputs)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.double(), sequential_float64(*inputs), atol=1e-4)
    got = gradients(selective_scan_cpu, inputs, weights)
    expected = gradients(sequential_float64, [t.double() for t in inputs], weights.double())
    for name, g, e in zip(["u", "delta", "A", "B", "C", "D"], got, expected):
        assert torch.isfinite(g).all(), name
        assert (g.double() - e).abs().max().item() <= 1e-4 * e.abs().max().item() + 1e-6, name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_are_scanned_in_float32_and_returned_in_their_dtype(dtype):
    inputs = scan_inputs(2, 100, 6)
    half = [t.to(dtype) for t in inputs]
    out = selective_scan_cpu(*half)
    assert out.dtype == dtype
    expected = selective_scan_cpu(*[t.float() for t in half])
    assert torch.allclose(out.float(), expected, rtol=1e-2, atol=1e-2)
    grads = gradients(selective_scan_cpu, half, torch.ones(2, 100, 6, dtype=dtype))
    assert [g.dtype for g in grads] == [dtype] * 6


def test_takes_the_strided_views_the_mamba_block_makes():
    u, delta, A, B, C, D = scan_inputs(3, 90, 12)
    u_view = u.transpose(1, 2).contiguous().transpose(1, 2)  # channel-major, as after the conv
    bc = torch.cat([torch.randn(3, 90, 2), B, C], dim=-1)  # B and C as slices of x_proj's output
    args = (u_view, delta, A, bc[..., 2:18], bc[..., 18:], D)
    assert torch.equal(selective_scan_cpu(*args), selective_scan_cpu(u, delta, A, B, C, D))
    weights = torch.randn(3, 90, 12)
    for g, e in zip(gradients(selective_scan_cpu, args, weights), gradients(selective_scan_cpu, (u, delta, A, B, C, D), weights)):
        assert torch.equal(g, e)


def test_results_do_not_depend_on_the_number_of_threads():
    inputs = scan_inputs(4, 300, 20, seed=5)
    weights = torch.randn(4, 300, 20)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [selective_scan_cpu(*inputs), *gradients(selective_scan_cpu, inputs, weights)]
        torch.set_num_threads(max(2, threads))
        many = [selective_scan_cpu(*inputs), *gradients(selective_scan_cpu, inputs, weights)]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, many))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="built with OpenMP on Linux only")
def test_kernel_runs_on_pytorchs_threads():
    # Without -fopenmp at::parallel_for runs all tasks on the calling thread: the kernel used one
    # core whatever torch.set_num_threads said, and every result above still held.
    threads = torch.get_num_threads()
    try:
        for wanted in (1, 2, 3):
            torch.set_num_threads(wanted)
            assert torch.ops.ulvm_scan_cpu.parallel_threads() == wanted
    finally:
        torch.set_num_threads(threads)


def test_auto_takes_it_for_cpu_tensors():
    from networks.scan import resolve_backend

    assert resolve_backend("auto", torch.device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="CPU tensors only"):
        resolve_backend("cpu", torch.device("meta"))


def test_reproduces_the_reference_output():
    fixture = torch.load(FIXTURE, weights_only=True)
    net = load_reference_weights(UltraLightVMUNet(activation="sigmoid", scan_backend="cpu"), fixture["state_dict"])
    with torch.no_grad():
        out = net.eval()(fixture["input"])
    assert (out - fixture["output"]).abs().max().item() < 2e-5


def test_network_backends_agree_in_training_mode():
    torch.manual_seed(0)
    compiled = UltraLightVMUNet(scan_backend="cpu")
    chunked = UltraLightVMUNet(scan_backend="torch")
    chunked.load_state_dict(compiled.state_dict())
    x = torch.rand(2, 3, 64, 64) * 255
    out_compiled, out_chunked = compiled(x), chunked(x)
    assert torch.allclose(out_compiled, out_chunked, atol=1e-5)
    out_compiled.square().mean().backward()
    out_chunked.square().mean().backward()
    for (name, p), q in zip(compiled.named_parameters(), chunked.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-3, atol=1e-6), name


def test_tracing_keeps_the_plain_tensor_scan():
    net = UltraLightVMUNet(scan_backend="cpu").eval()
    x = torch.rand(1, 3, 32, 32) * 255
    traced = torch.jit.trace(net, x)
    assert "ulvm_scan_cpu" not in str(traced.inlined_graph)
    with torch.no_grad():
        assert torch.allclose(traced(x), net(x), atol=1e-5)


# The scripts below run in fresh processes with their own extensions folder, so that the build
# (or its failure) really happens there.
NETWORK_RUN = textwrap.dedent(
    """
    import logging, warnings
    import torch
    from networks import UltraLightVMUNet
    import networks.scan

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.manual_seed(0)
    net = UltraLightVMUNet(scan_backend="cpu").eval()
    x = torch.rand(1, 3, 32, 32) * 255
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            out = net(x)
    for w in caught:
        print("WARNING:", w.message)
    chunked = UltraLightVMUNet(scan_backend="torch").eval()
    chunked.load_state_dict(net.state_dict())
    with torch.no_grad():
        print("MAX DIFFERENCE", (out - chunked(x)).abs().max().item())
    """
)


def run_python(script: str, extensions: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TORCH_EXTENSIONS_DIR": str(extensions), **env}
    return subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, cwd=ROOT)


def test_a_failed_build_warns_once_and_runs_the_chunked_scan(tmp_path):
    result = run_python(NETWORK_RUN, tmp_path, CXX=str(tmp_path / "no-such-compiler"))
    assert result.returncode == 0, result.stderr
    warnings_ = [line for line in result.stdout.splitlines() if line.startswith("WARNING:")]
    assert len(warnings_) == 1, result.stdout
    assert "compiled CPU selective scan is unavailable" in warnings_[0]
    assert "no-such-compiler" in warnings_[0]  # says why
    assert "selective scan backend: torch" in result.stderr
    assert "MAX DIFFERENCE 0.0" in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="built with OpenMP on Linux only")
def test_a_compiler_without_openmp_gets_the_one_thread_kernel(tmp_path):
    compiler = tmp_path / "c++-without-openmp"  # refuses -fopenmp, like clang without libomp
    compiler.write_text(
        '#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && { echo "error: unsupported option -fopenmp" >&2; exit 1; }; done\n'
        'exec c++ "$@"\n'
    )
    compiler.chmod(0o755)
    result = run_python(NETWORK_RUN, tmp_path / "extensions", CXX=str(compiler))
    assert result.returncode == 0, result.stderr
    warnings_ = [line for line in result.stdout.splitlines() if line.startswith("WARNING:")]
    assert len(warnings_) == 1 and "built without OpenMP" in warnings_[0] and "one thread" in warnings_[0], result.stdout
    assert "selective scan backend: cpu" in result.stderr
    difference = float(result.stdout.split("MAX DIFFERENCE")[1].split()[0])
    assert difference < 1e-4
    # a second start loads that build: it neither compiles nor fails the OpenMP build again
    again = run_python(NETWORK_RUN, tmp_path / "extensions", CXX=str(compiler))
    assert again.returncode == 0, again.stderr
    assert "compiling" not in again.stderr and "selective scan backend: cpu" in again.stderr
    assert [line for line in again.stdout.splitlines() if "one thread" in line], again.stdout


def test_compiling_can_be_turned_off(tmp_path):
    result = run_python(NETWORK_RUN, tmp_path, ULVM_NO_COMPILE="1")
    assert result.returncode == 0, result.stderr
    assert "WARNING:" not in result.stdout
    assert "compiling" not in result.stderr
    assert "selective scan backend: torch" in result.stderr
    assert not any(tmp_path.iterdir())  # nothing was built


@pytest.mark.slow
def test_processes_starting_together_share_one_build(tmp_path):
    """Two processes start on an empty extensions folder: one compiles, the other waits for it;
    a third, later, loads the build without compiling."""
    script = NETWORK_RUN + "\nprint('BACKEND', networks.scan.resolve_backend('cpu', x.device))\n"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    together = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in together]
    later = run_python(script, tmp_path)
    for (stdout, stderr), code in zip(
        [*outputs, (later.stdout, later.stderr)], [p.returncode for p in together] + [later.returncode]
    ):
        assert code == 0, stderr
        assert "BACKEND cpu" in stdout and "WARNING:" not in stdout, stderr
        assert "MAX DIFFERENCE" in stdout
    assert "compiling the CPU selective scan" not in later.stderr
    (build,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    ninja_log = (build / ".ninja_log").read_text().splitlines()
    compiles = [line for line in ninja_log if line.split("\t")[3:4] == ["selective_scan_cpu.o"]]
    assert len(compiles) == 1, ninja_log  # compiled once, by one of the two
    assert not (build / "lock").exists()
