"""The Triton selective scan agrees with the recurrence, forward and backward, and the network
running on it reproduces the reference release. On a GPU the kernels are compiled; without one
they run in Triton's interpreter on CPU tensors (see ``triton_interpreter``)."""

import pytest
import torch

from triton_interpreter import ON_GPU  # Triton's interpreter, made fast enough, without a GPU

pytest.importorskip("triton", reason="the Triton scan needs the triton package (extra 'triton')")

from networks import UltraLightVMUNet, load_reference_weights, selective_scan

from test_selective_scan import scan_inputs, sequential_float64

DEVICE = "cuda" if ON_GPU else "cpu"


def on_device(tensors, dtype=None):
    return [t.to(DEVICE, dtype if t.is_floating_point() and dtype else t.dtype) for t in tensors]


@pytest.mark.parametrize(("length", "states"), [(1, 16), (7, 16), (37, 8), (128, 16), (300, 16), (61, 64), (50, 5)])
def test_forward_and_gradients_match_the_float64_recurrence(length, states):
    inputs = [t.requires_grad_() for t in on_device(scan_inputs(2, length, 3, states=states, seed=length))]
    weights = torch.randn(2, length, 3, device=DEVICE)
    out = selective_scan(*inputs, backend="triton")
    assert out.dtype == torch.float32 and out.device.type == DEVICE
    grads = torch.autograd.grad((out * weights).sum(), inputs)

    reference = [t.detach().cpu().double().requires_grad_() for t in inputs]
    expected = sequential_float64(*reference)
    expected_grads = torch.autograd.grad((expected * weights.cpu().double()).sum(), reference)
    assert torch.allclose(out.detach().cpu().double(), expected, rtol=1e-4, atol=1e-4)
    for name, g, e in zip(["u", "delta", "A", "B", "C", "D"], grads, expected_grads):
        assert g.shape == e.shape and g.dtype == torch.float32, name
        assert (g.cpu().double() - e).abs().max().item() <= 1e-4 * e.abs().max().item() + 1e-5, name


def test_strong_decays_over_long_sequences_stay_exact():
    u, delta, A, B, C, D = scan_inputs(1, 700, 2, seed=5)
    delta, A = delta * 50, A * 10
    out = selective_scan(*on_device([u, delta, A, B, C, D]), backend="triton")
    assert torch.isfinite(out).all()
    assert torch.allclose(out.cpu().double(), sequential_float64(u, delta, A, B, C, D), atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_are_scanned_in_float32_and_returned_in_their_dtype(dtype):
    u, delta, A, B, C, D = scan_inputs(2, 40, 4, seed=7)
    half = on_device([u, delta, A, B, C, D], dtype)
    half[2], half[5] = half[2].float(), half[5].float()  # A and D stay float32, as in the Mamba block
    half = [t.requires_grad_() for t in half]
    out = selective_scan(*half, backend="triton")
    assert out.dtype == dtype
    expected = sequential_float64(*[t.detach().cpu() for t in half])
    assert torch.allclose(out.detach().cpu().double(), expected, atol=2e-2, rtol=1e-2)
    grads = torch.autograd.grad(out.float().sum(), half)
    assert [g.dtype for g in grads] == [t.dtype for t in half]


def test_non_contiguous_inputs_as_the_mamba_block_makes_them():
    """B and C are slices of one projection, u a transposed convolution output."""
    batch, length, channels, states = 2, 45, 6, 16
    g = torch.Generator().manual_seed(3)
    projection = torch.randn(batch, length, 3 + 2 * states, generator=g)
    _, B, C = projection.split([3, states, states], dim=-1)
    u = torch.randn(batch, channels, length, generator=g).transpose(1, 2)
    delta = torch.rand(batch, length, channels, generator=g)
    A, D = -torch.rand(channels, states, generator=g) * 4, torch.randn(channels, generator=g)
    inputs = [t.requires_grad_() for t in on_device([u, delta, A, B, C, D])]
    out = selective_scan(*inputs, backend="triton")
    expected = sequential_float64(u, delta, A, B, C, D)
    assert torch.allclose(out.detach().cpu().double(), expected, rtol=1e-4, atol=1e-4)
    reference = [t.detach().cpu().double().requires_grad_() for t in inputs]
    expected_grads = torch.autograd.grad(sequential_float64(*reference).sum(), reference)
    for name, g, e in zip(["u", "delta", "A", "B", "C", "D"], torch.autograd.grad(out.sum(), inputs), expected_grads):
        assert (g.cpu().double() - e).abs().max().item() <= 1e-4 * e.abs().max().item() + 1e-5, name


@pytest.mark.slow
def test_network_on_the_triton_scan_reproduces_the_reference_output():
    """One image of the parity fixture (the interpreter is slow: ~30 s on 2 CPU cores)."""
    fixture = torch.load("tests/data/ulvmunet_parity_seed2024.pt", weights_only=True)
    net = load_reference_weights(UltraLightVMUNet(activation="sigmoid", scan_backend="triton"), fixture["state_dict"])
    images = fixture["input"] if ON_GPU else fixture["input"][:1]
    with torch.no_grad():
        out = net.to(DEVICE).eval()(images.to(DEVICE)).cpu()
    assert (out - fixture["output"][: len(images)]).abs().max().item() < 2e-5


@pytest.mark.skipif(not ON_GPU, reason="a training step of the whole network is minutes in the interpreter")
def test_network_backends_agree_in_training_mode_on_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convolutions on both
    torch.manual_seed(0)
    nets = {b: UltraLightVMUNet(scan_backend=b).cuda() for b in ("triton", "torch")}
    nets["torch"].load_state_dict(nets["triton"].state_dict())
    x = torch.rand(4, 3, 128, 128, device="cuda") * 255
    for net in nets.values():
        net(x).square().mean().backward()
    grads = {name: [p.grad for p in net.parameters()] for name, net in nets.items()}
    scale = max(g.norm() for g in grads["torch"])
    for name, g, e in zip([n for n, _ in nets["torch"].named_parameters()], grads["triton"], grads["torch"]):
        # float32 sums in another order; a gradient that is a sum of many cancelling terms (the
        # skip scales') keeps an absolute error on the scale of the others, not of itself
        assert (g - e).norm() <= 1e-3 * e.norm() + 1e-6 * scale, name


@pytest.mark.skipif(not ON_GPU, reason="needs a CUDA GPU")
def test_auto_takes_triton_on_cuda_without_mamba_ssm():
    from networks.scan import cuda_kernels_available, resolve_backend

    expected = "cuda" if cuda_kernels_available() else "triton"
    assert resolve_backend("auto", torch.device("cuda")) == expected
    assert resolve_backend("auto", torch.device("cpu")) != "triton"
