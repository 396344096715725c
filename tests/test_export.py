"""Deployment paths: TorchScript (MONAI model zoo) and ONNX (small devices) give eager's output."""

import numpy as np
import pytest
import torch

import networks
from networks import UltraLightVMUNet

# what the ONNX scan (and the softplus before it) may be made of: elementwise arithmetic and
# reshaping, no loop and nothing custom
STANDARD_SCAN_OPERATORS = {
    "Add",
    "Mul",
    "Exp",
    "Abs",
    "Neg",
    "Log",
    "Relu",
    "Div",
    "MatMul",
    "ReduceSum",
    "Reshape",
    "Transpose",
    "Split",
    "Slice",
    "Pad",
    "Concat",
    "Sum",
    "Constant",
}


@pytest.fixture(scope="module")
def net_and_input():
    torch.manual_seed(0)
    return UltraLightVMUNet(activation="sigmoid").eval(), torch.rand(1, 3, 64, 96) * 255


def test_torchscript_script_and_trace_equal_eager(net_and_input, tmp_path):
    net, x = net_and_input
    with torch.no_grad():
        expected = net(x)
        scripted = torch.jit.script(net)
        scripted.save(str(tmp_path / "model.ts"))
        loaded = torch.jit.load(str(tmp_path / "model.ts"))
        traced = torch.jit.trace(net, x)
        # the exported scan sums in another order than eager's: equal to float32 rounding
        torch.testing.assert_close(loaded(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(traced(x), expected, rtol=1e-5, atol=1e-5)
        # A scripted model still takes other sizes and still checks them.
        assert loaded(torch.rand(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    with pytest.raises(torch.jit.Error, match="divisible by 32"):
        loaded(torch.rand(1, 3, 40, 32))


def test_onnx_export_runs_in_onnxruntime_with_standard_operators(net_and_input, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net, x = net_and_input
    path = tmp_path / "model.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["image"], output_names=["probabilities"], dynamo=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)  # no custom operators
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        assert abs(out - net(x).numpy()).max() < 1e-4


class _ScanOfOneInput(torch.nn.Module):
    """A selective scan whose u, delta, B and C are slices of one (batch, L, 2 Ch + 2 S) input,
    so that it exports like a network."""

    def __init__(self, channels: int, states: int) -> None:
        super().__init__()
        self.sizes = [channels, channels, states, states]
        self.A = torch.nn.Parameter(-torch.rand(channels, states) * 2)
        self.D = torch.nn.Parameter(torch.randn(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, delta, B, C = (x / 255).split(self.sizes, dim=-1)
        return networks.scan.selective_scan(u, torch.nn.functional.softplus(delta), self.A, B, C, self.D)


@pytest.mark.parametrize("length", [1, 5, 8, 13, 64, 100, 1024])
def test_scan_written_in_onnx_equals_the_sequential_scan(length):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from networks.onnx_export import export_onnx

    torch.manual_seed(length)
    module = _ScanOfOneInput(channels=6, states=4)
    model = export_onnx(module, (length, 20))
    assert {node.op_type for node in model.graph.node} <= STANDARD_SCAN_OPERATORS
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 3):  # any batch size
        x = torch.rand(batch, length, 20) * 255
        u, delta, B, C = (x / 255).split(module.sizes, dim=-1)
        with torch.no_grad():
            expected = networks.scan.selective_scan_sequential(u, torch.nn.functional.softplus(delta), module.A, B, C, module.D)
        actual = session.run(None, {"image": x.numpy()})[0]
        np.testing.assert_allclose(actual, expected.numpy(), rtol=1e-5, atol=1e-5)


class _Softplus(torch.nn.Module):
    def __init__(self, beta: float, threshold: float) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus((x - 128) / 4, self.beta, self.threshold)


@pytest.mark.parametrize(("beta", "threshold"), [(1.0, 20.0), (2.0, 20.0), (1.0, 5.0), (0.5, 3.0)])
def test_softplus_written_in_onnx_equals_pytorch(beta, threshold):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from networks.onnx_export import export_onnx

    module = _Softplus(beta, threshold)
    model = export_onnx(module, (7, 50))
    assert "Softplus" not in {node.op_type for node in model.graph.node}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = torch.linspace(0, 255, 2 * 7 * 50).reshape(2, 7, 50)  # -32 to 32 after the shift: both sides of every threshold
    np.testing.assert_allclose(
        session.run(None, {"image": x.numpy()})[0], module(x).numpy(), rtol=1e-6, atol=3e-7
    )  # 1 + exp(-|x|) rounds to float32 near 1
