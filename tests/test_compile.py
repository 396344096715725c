"""The whole network traces under torch.compile as one graph, forward and backward: each scan
backend is a custom operator with its backward pass, so nothing breaks the graph."""

import subprocess
import sys

import pytest
import torch
import torch._dynamo

from networks import Mamba, UltraLightVMUNet


def parameter_grads(net: torch.nn.Module, output: torch.Tensor):
    net.zero_grad()
    output.square().mean().backward()
    return [p.grad.clone() for p in net.parameters()]


def assert_grads_close(compiled, eager):
    for g, e in zip(compiled, eager):
        assert (g - e).norm() <= 1e-3 * e.norm() + 1e-6


@pytest.mark.parametrize(("spatial_dims", "shape"), [(2, (2, 3, 64, 64)), (3, (1, 1, 32, 32, 32))])
def test_network_traces_as_one_graph(spatial_dims, shape):
    net = UltraLightVMUNet(spatial_dims=spatial_dims, in_channels=shape[1], out_channels=2)
    explanation = torch._dynamo.explain(net)(torch.rand(shape) * 255)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation.break_reasons


def test_compiled_network_equals_eager_forward_and_backward():
    # aot_eager: dynamo and AOT autograd trace forward and backward through the scan's custom
    # operators (their fake implementations included); inductor's code generation is the slow
    # test below. (In 3D, PyTorch 2.13's aot_eager trips over a stride check of its own in
    # native_group_norm, before any scan runs.)
    torch.manual_seed(0)
    net = UltraLightVMUNet(out_channels=2)
    x = torch.rand(2, 3, 64, 64) * 255
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    out, expected = compiled(x), net(x)
    assert torch.allclose(out, expected, atol=1e-5)
    assert_grads_close(parameter_grads(net, out), parameter_grads(net, expected))


@pytest.mark.slow
def test_mamba_block_under_inductor_equals_eager():
    """Inductor's generated code around the scan operator (the Triton one on a GPU)."""
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    block = Mamba(d_model=8).to(device)
    x = torch.randn(4, 100, 8, device=device)
    compiled = torch.compile(block, fullgraph=True)
    out, expected = compiled(x), block(x)
    assert torch.allclose(out, expected, atol=1e-5)
    assert_grads_close(parameter_grads(block, out), parameter_grads(block, expected))


CAPTURE_FIRST_CALL = """
import torch
from networks import UltraLightVMUNet
from networks.scan.compiled_cpu import compiled_cpu_loaded

graphs = []
def capture(gm, example_inputs):
    graphs.append(str(gm.graph))
    return gm.forward

assert not compiled_cpu_loaded()
net = UltraLightVMUNet(out_channels=1).eval()
with torch.no_grad():  # the network's first call ever is a compiled one
    torch.compile(net, backend=capture, fullgraph=True)(torch.rand(1, 3, 64, 64))
print("scan_cpu" in graphs[0], "scan_torch" in graphs[0])
"""


def test_a_network_compiled_before_any_eager_call_traces_the_compiled_cpu_kernel():
    from networks.scan.compiled_cpu import compiled_cpu_available

    if not compiled_cpu_available():
        pytest.skip("no C++ compiler: the CPU kernel cannot be built here")
    # a fresh process: in this one, earlier tests have loaded the kernel already
    result = subprocess.run([sys.executable, "-c", CAPTURE_FIRST_CALL], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "False"]
