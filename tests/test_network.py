"""The network as users call it: exactness against the reference release, checkpoints, sizes, 3D."""

import logging
from pathlib import Path

import pytest
import torch
from monai.inferers import sliding_window_inference

from networks import Mamba, PVMLayer, UltraLightVMUNet, init_reference_weights, load_reference_weights
from networks.weights import pvm_groups_of

FIXTURE = Path(__file__).parent / "data" / "ulvmunet_parity_seed2024.pt"


@pytest.fixture(scope="module")
def fixture() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def test_default_network_has_the_papers_49457_parameters():
    assert sum(p.numel() for p in UltraLightVMUNet().parameters()) == 49457


@pytest.mark.parametrize(("groups", "count"), [(1, 136269), (2, 69589), (4, 49457), (8, 42737)])
def test_pvm_parallel_degree_sets_the_parameter_count_and_mamba_width(groups, count):
    net = UltraLightVMUNet(pvm_groups=groups)
    assert sum(p.numel() for p in net.parameters()) == count
    # one shared Mamba per PVM layer, its width the layer's input width over the degree
    assert [name for name in net.state_dict() if name.startswith("encoder4.")] == [
        name for name in UltraLightVMUNet().state_dict() if name.startswith("encoder4.")
    ]
    assert net.encoder4[0].mamba.d_model == 24 // groups and net.decoder1[0].mamba.d_model == 64 // groups
    out = net(torch.rand(2, 3, 32, 64) * 255)
    assert out.shape == (2, 1, 32, 64) and torch.isfinite(out).all()
    assert pvm_groups_of(net.state_dict()) == groups


@pytest.mark.parametrize("groups", [3, 16, 0])
def test_a_parallel_degree_that_does_not_divide_the_pvm_widths_is_refused(groups):
    with pytest.raises(ValueError, match=r"pvm_groups must divide every PVM width \[24, 32, 48, 64\]") as err:
        UltraLightVMUNet(pvm_groups=groups)
    assert f"got {groups}; possible values: [1, 2, 4, 8]" in str(err.value)
    with pytest.raises(ValueError, match="groups"):
        PVMLayer(20, 32, groups=groups)


def test_a_checkpoint_of_another_parallel_degree_names_pvm_groups(tmp_path):
    path = tmp_path / "pvm2.pt"
    torch.save(UltraLightVMUNet(pvm_groups=2).state_dict(), path)
    with pytest.raises(ValueError, match="pvm_groups") as err:
        load_reference_weights(UltraLightVMUNet(), path)
    message = str(err.value)
    assert str(path) in message and "encoder4.0.mamba.in_proj.weight: checkpoint (48, 12) vs model (24, 6)" in message
    assert "pvm_groups=2, the model has pvm_groups=4" in message and "--pvm_groups 2" in message
    load_reference_weights(UltraLightVMUNet(pvm_groups=2), path)  # the degree it names fits


def test_state_dict_keys_and_shapes_are_the_reference_releases(fixture):
    ours = UltraLightVMUNet().state_dict()
    assert list(ours) == list(fixture["state_dict"])
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in fixture["state_dict"].items()}


@pytest.mark.parametrize("backend", ["torch", "sequential"])
def test_reproduces_the_reference_output(fixture, backend, tmp_path):
    torch.save(fixture["state_dict"], tmp_path / "reference.pth")  # as the reference release saves
    net = load_reference_weights(UltraLightVMUNet(activation="sigmoid", scan_backend=backend), tmp_path / "reference.pth")
    with torch.no_grad():
        out = net.eval()(fixture["input"])
    assert (out - fixture["output"]).abs().max().item() < 2e-5


def test_logits_by_default_and_activation_options(fixture):
    x = fixture["input"]
    logits_net = load_reference_weights(UltraLightVMUNet(), fixture["state_dict"]).eval()
    with torch.no_grad():
        logits = logits_net(x)
        assert torch.allclose(torch.sigmoid(logits), fixture["output"], atol=2e-5)
        soft = UltraLightVMUNet(out_channels=3, activation="softmax").eval()(x)
    assert soft.shape == (2, 3, 64, 64)
    assert torch.allclose(soft.sum(1), torch.ones(2, 64, 64), atol=1e-5)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"model_state_dict": sd, "epoch": 3},
        lambda sd: {"model": sd, "optimizer": {"state": {}}},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {"model_state_dict": {f"module.{k}": v for k, v in sd.items()}},
    ],
    ids=["plain", "model_state_dict", "monai_model", "module_prefix", "nested_prefix"],
)
def test_loads_every_checkpoint_layout(fixture, tmp_path, wrap):
    path = tmp_path / "ckpt.pt"
    torch.save(wrap(fixture["state_dict"]), path)
    net = load_reference_weights(UltraLightVMUNet(activation="sigmoid"), path).eval()
    with torch.no_grad():
        assert (net(fixture["input"]) - fixture["output"]).abs().max().item() < 2e-5


def test_refuses_a_checkpoint_that_does_not_fit(fixture, tmp_path):
    state = dict(fixture["state_dict"])
    del state["final.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"final\.bias") as err:
        load_reference_weights(UltraLightVMUNet(), path)
    message = str(err.value)
    assert str(path) in message and "final.bias" in message and "extra.weight" in message


def test_refuses_a_checkpoint_of_another_configuration(fixture):
    with pytest.raises(ValueError, match=r"shape mismatches: \['final.weight"):
        load_reference_weights(UltraLightVMUNet(out_channels=2), fixture["state_dict"])


def test_refuses_something_that_is_no_state_dict(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"epoch": 3, "notes": "no weights"}, path)
    with pytest.raises(ValueError, match="not a state dict"):
        load_reference_weights(UltraLightVMUNet(), path)


class _Payload:
    """Unpickling this would run code: a weights-only load must refuse it."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_never_executes_code_from_a_checkpoint(fixture, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": fixture["state_dict"], "payload": _Payload()}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        load_reference_weights(UltraLightVMUNet(), path)


@pytest.mark.parametrize("shape", [(1, 3, 100, 128), (1, 3, 64, 48), (1, 3, 16, 16)])
def test_sizes_not_divisible_by_32_raise_a_clear_error(shape):
    with pytest.raises(ValueError, match="divisible by 32") as err:
        UltraLightVMUNet()(torch.rand(shape))
    assert str(list(shape)) in str(err.value)


def test_wrong_number_of_dimensions_raises():
    with pytest.raises(ValueError, match="2 spatial sizes"):
        UltraLightVMUNet()(torch.rand(3, 64, 64))


def test_non_square_and_larger_inputs():
    net = UltraLightVMUNet(in_channels=1, out_channels=2).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 96, 160)).shape == (2, 2, 96, 160)


def test_variants_split_att_conv_and_no_bridge():
    x = torch.rand(1, 3, 64, 64)
    conv = UltraLightVMUNet(split_att="conv")
    no_bridge = UltraLightVMUNet(bridge=False)
    assert conv(x).shape == no_bridge(x).shape == (1, 1, 64, 64)
    assert not any(k.startswith("scab") for k in no_bridge.state_dict())
    assert sum(p.numel() for p in no_bridge.parameters()) < 49457


def test_3d_volumes_in_a_monai_sliding_window_pipeline():
    net = UltraLightVMUNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8, 12, 16, 20, 24)).eval()
    assert net.encoder1[0].weight.dim() == 5 and net.scab.satt.shared_conv2d[0].weight.dim() == 5
    volume = torch.rand(1, 1, 40, 36, 50)
    with torch.no_grad():
        out = sliding_window_inference(volume, roi_size=(32, 32, 32), sw_batch_size=2, predictor=net, overlap=0.25)
    assert out.shape == (1, 2, 40, 36, 50)
    assert torch.isfinite(out).all()


def test_3d_backward():
    net = UltraLightVMUNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(4, 4, 8, 8, 12, 16))
    net(torch.rand(1, 1, 32, 32, 32)).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_reference_initialisation():
    torch.manual_seed(0)
    net = UltraLightVMUNet()
    mamba = net.encoder4[0].mamba
    for m in net.modules():
        if isinstance(m, torch.nn.Linear) and m.bias is not None:
            assert m.bias.abs().max() == 0  # including every dt_proj
        if isinstance(m, torch.nn.Conv2d):
            assert m.bias.abs().max() == 0
    assert torch.equal(mamba.A_log[3], torch.log(torch.arange(1, 17, dtype=torch.float32)))
    assert torch.equal(mamba.D, torch.ones_like(mamba.D))
    # Conv2d weights: normal(0, sqrt(2 / fan_out)); decoder4 has 24*16*9 = 3456 of them.
    expected = (2.0 / (9 * 16)) ** 0.5
    assert abs(net.decoder4[0].weight.std().item() - expected) / expected < 0.1
    # Linear weights: truncated normal, std 0.02, nothing beyond 2 (the truncation bounds).
    assert abs(net.decoder1[0].proj.weight.std().item() - 0.02) < 0.004
    # Re-applying the scheme on a differently initialised module resets it the same way.
    layer = torch.nn.Linear(64, 64)
    init_reference_weights(layer)
    assert layer.bias.abs().max() == 0 and layer.weight.std().item() < 0.03


@pytest.mark.parametrize("groups", [1, 2, 4, 8])
def test_pvm_layer_batches_its_groups_exactly_as_one_call_per_group(groups):
    torch.manual_seed(0)
    layer = PVMLayer(32, 48, groups=groups)
    assert layer.mamba.d_model == 32 // groups
    x = torch.randn(2, 32, 8, 12)
    tokens = layer.norm(x.flatten(2).transpose(1, 2))
    groups = [layer.mamba(g) + layer.skip_scale * g for g in tokens.chunk(groups, dim=2)]
    expected = layer.proj(layer.norm(torch.cat(groups, dim=2))).transpose(1, 2).reshape(2, 48, 8, 12)
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_mamba_block_is_causal():
    torch.manual_seed(0)
    block = Mamba(d_model=8)
    x = torch.randn(1, 30, 8)
    y = block(x)
    x2 = x.clone()
    x2[:, 20:] = torch.randn(1, 10, 8)
    assert torch.allclose(block(x2)[:, :20], y[:, :20], atol=1e-6)
    assert not torch.allclose(block(x2)[:, 20:], y[:, 20:])


def test_half_precision_autocast_runs_the_scan_in_float32(fixture):
    net = load_reference_weights(UltraLightVMUNet(activation="sigmoid"), fixture["state_dict"]).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(fixture["input"])
    assert torch.isfinite(out).all()
    assert (out.float() - fixture["output"]).abs().mean().item() < 0.02


def test_logs_which_backend_runs(caplog):
    import networks.scan

    networks.scan._announced.clear()
    with caplog.at_level(logging.INFO, logger="networks.scan"):
        UltraLightVMUNet()(torch.rand(1, 3, 32, 32))
    expected = "cpu" if networks.scan.compiled_cpu_available() else "torch"  # "auto" on a CPU
    assert f"selective scan backend: {expected}" in caplog.text


def test_explicit_cuda_backend_without_the_kernels_says_how_to_install():
    from networks import cuda_kernels_available

    if cuda_kernels_available():
        pytest.skip("mamba-ssm is installed here")
    with pytest.raises(ImportError, match=r"ultralight-vmunet\[cuda\]"):
        UltraLightVMUNet(scan_backend="cuda")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="scan_backend"):
        UltraLightVMUNet(scan_backend="fast")
    with pytest.raises(ValueError, match="multiple of 4"):
        UltraLightVMUNet(channels=(8, 16, 24, 30, 48, 64))
    with pytest.raises(ValueError, match="spatial_dims"):
        UltraLightVMUNet(spatial_dims=1)


def test_profile_reports_the_papers_figures():
    from networks.profile import profile

    stats = profile(UltraLightVMUNet(), (1, 3, 256, 256))
    assert stats["parameters"] == 49457
    assert abs(stats["paper_gmac"] - 0.060) < 0.001  # the paper's 0.060 G
    assert abs(stats["full_gflop"] - 0.132) < 0.001  # the spec's full count
    assert 200 < stats["weights_kb"] < 260  # the paper's file: 229.1 KB


def test_profile_prints_the_ablation_table_by_parallel_degree(capsys):
    from networks.profile import main

    main(["--size", "64", "64", "--pvm-groups", "1", "8"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:1] in (["1"], ["8"])]
    assert [row[:2] for row in rows] == [["1", "136,269"], ["8", "42,737"]]
    assert rows[0][6:8] == ["0.136M", "0.060"] and rows[1][6:8] == ["-", "-"]  # the paper's figures beside
    assert rows[0][2] == rows[1][2], "the paper-style count, without the Mamba blocks, is the same for every degree"
    assert float(rows[0][3]) > float(rows[1][3]), "a wider Mamba costs more in the full count"
