"""Deployment paths: TorchScript (MONAI model zoo) and ONNX (small devices) give eager's output."""

import pytest
import torch

from networks import UltraLightVMUNet


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
