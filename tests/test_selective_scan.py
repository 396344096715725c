"""The selective-scan backends agree with the recurrence as written, forward and backward."""

import pytest
import torch
import torch.nn.functional as F

from networks import UltraLightVMUNet, cuda_kernels_available, selective_scan_chunked, selective_scan_sequential
from networks.scan.export import selective_scan_unrolled


def scan_inputs(batch: int, length: int, channels: int, states: int = 16, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, length, channels, generator=g, dtype=dtype)
    delta = F.softplus(torch.randn(batch, length, channels, generator=g, dtype=dtype))
    # A as Mamba makes it (-1..-16), scaled per channel so decays cover fast and slow.
    A = -torch.arange(1, states + 1, dtype=dtype).repeat(channels, 1) * torch.rand(channels, 1, generator=g, dtype=dtype)
    B = torch.randn(batch, length, states, generator=g, dtype=dtype)
    C = torch.randn(batch, length, states, generator=g, dtype=dtype)
    D = torch.randn(channels, generator=g, dtype=dtype)
    return u, delta, A, B, C, D


def sequential_float64(u, delta, A, B, C, D):
    """The recurrence exactly as the spec writes it, in float64, nothing vectorised over time."""
    u, delta, A, B, C, D = (t.double() for t in (u, delta, A, B, C, D))
    h = torch.zeros(u.shape[0], u.shape[2], A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(u.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + delta[:, t, :, None] * B[:, t, None, :] * u[:, t, :, None]
        ys.append((C[:, t, None, :] * h).sum(-1) + D * u[:, t])
    return torch.stack(ys, dim=1)


@pytest.mark.parametrize("length", [1, 2, 7, 16, 63, 64, 100, 1024])
def test_chunked_forward_matches_the_recurrence(length):
    inputs = scan_inputs(2, length, 6)
    expected = sequential_float64(*inputs)
    for scan in (selective_scan_chunked, selective_scan_sequential, selective_scan_unrolled):
        out = scan(*inputs)
        assert out.dtype == torch.float32
        assert torch.allclose(out.double(), expected, rtol=1e-4, atol=1e-4), scan.__name__


@pytest.mark.parametrize("length", [5, 36, 50])
def test_chunked_gradients_match_float64_sequential(length):
    inputs64 = [t.requires_grad_() for t in scan_inputs(2, length, 4, states=8, dtype=torch.float64, seed=1)]
    weights = torch.randn(2, length, 4, dtype=torch.float64)
    grads64 = torch.autograd.grad((sequential_float64(*inputs64) * weights).sum(), inputs64)

    inputs32 = [t.detach().float().requires_grad_() for t in inputs64]
    grads32 = torch.autograd.grad((selective_scan_chunked(*inputs32) * weights.float()).sum(), inputs32)
    for name, g32, g64 in zip(["u", "delta", "A", "B", "C", "D"], grads32, grads64):
        scale = g64.abs().max().item()
        assert (g32.double() - g64).abs().max().item() <= 1e-4 * scale + 1e-5, name


def test_chunked_passes_gradcheck_in_float64():
    inputs = [t.requires_grad_() for t in scan_inputs(1, 11, 2, states=3, dtype=torch.float64, seed=2)]
    assert torch.autograd.gradcheck(selective_scan_chunked, inputs)


def test_half_inputs_are_scanned_in_float32_and_returned_in_their_dtype():
    inputs = scan_inputs(1, 40, 4)
    half = [inputs[0].half(), inputs[1].half(), *inputs[2:]]
    out = selective_scan_chunked(*half)
    assert out.dtype == torch.float16
    reference = selective_scan_chunked(half[0].float(), half[1].float(), *inputs[2:])
    assert torch.allclose(out.float(), reference, atol=1e-2, rtol=1e-3)


@pytest.mark.parametrize("scan", [selective_scan_chunked, selective_scan_unrolled])
def test_long_sequences_with_strong_decay_stay_finite(scan):
    u, delta, A, B, C, D = scan_inputs(1, 700, 4)
    out = scan(u, delta * 50, A * 10, B, C, D)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.double(), sequential_float64(u, delta * 50, A * 10, B, C, D), atol=1e-4)


def test_exported_scan_keeps_dtypes_and_exports_with_a_dynamic_batch():
    inputs = scan_inputs(2, 40, 4)
    assert selective_scan_unrolled(inputs[0].half(), inputs[1].half(), *inputs[2:]).dtype == torch.float16
    assert selective_scan_unrolled(*(t.double() for t in inputs)).dtype == torch.float64

    class Scan(torch.nn.Module):
        def forward(self, u, delta, A, B, C, D):
            return selective_scan_unrolled(u, delta, A, B, C, D)

    batch = torch.export.Dim("batch")
    program = torch.export.export(Scan(), inputs, dynamic_shapes=({0: batch}, {0: batch}, None, {0: batch}, {0: batch}, None))
    more = scan_inputs(5, 40, 4, seed=4)
    assert torch.allclose(program.module()(*more).double(), sequential_float64(*more), rtol=1e-4, atol=1e-4)


def test_network_backends_agree_in_training_mode():
    torch.manual_seed(0)
    fast = UltraLightVMUNet(scan_backend="torch")
    slow = UltraLightVMUNet(scan_backend="sequential")
    slow.load_state_dict(fast.state_dict())
    x = torch.rand(2, 3, 64, 64) * 255
    fast(x).square().mean().backward()
    slow(x).square().mean().backward()
    for (name, p), q in zip(fast.named_parameters(), slow.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-3, atol=1e-6), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pure_pytorch_backend_runs_on_cuda():
    torch.manual_seed(0)
    net = UltraLightVMUNet(scan_backend="torch")
    x = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        expected = net.eval()(x)
        out = net.cuda()(x.cuda()).cpu()
    assert torch.allclose(out, expected, atol=1e-4)


@pytest.mark.skipif(
    not (torch.cuda.is_available() and cuda_kernels_available()), reason="needs CUDA and mamba-ssm (extra 'cuda')"
)
def test_cuda_kernels_match_the_pytorch_backend():
    torch.manual_seed(0)
    kernels = UltraLightVMUNet(scan_backend="cuda").cuda()
    pytorch = UltraLightVMUNet(scan_backend="torch").cuda()
    pytorch.load_state_dict(kernels.state_dict())
    x = torch.rand(2, 3, 128, 128, device="cuda") * 255
    out_k, out_p = kernels(x), pytorch(x)
    assert torch.allclose(out_k, out_p, atol=1e-4, rtol=1e-4)
    out_k.square().mean().backward()
    out_p.square().mean().backward()
    for (name, p), q in zip(kernels.named_parameters(), pytorch.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-2, atol=1e-5), name


def test_exportable_path_equals_the_custom_backward_path():
    """TorchScript runs the plain-tensor scan (autograd differentiates it); eager training runs the
    hand-written backward. Both must give the same values and gradients."""
    scripted = torch.jit.script(selective_scan_chunked)
    eager_in = [t.requires_grad_() for t in scan_inputs(2, 70, 5, seed=3)]
    script_in = [t.detach().clone().requires_grad_() for t in eager_in]
    weights = torch.randn(2, 70, 5)
    out_eager, out_script = selective_scan_chunked(*eager_in), scripted(*script_in)
    assert torch.allclose(out_eager, out_script, rtol=1e-5, atol=1e-5)  # sums in another order
    (out_eager * weights).sum().backward()
    (out_script * weights).sum().backward()
    for name, a, b in zip(["u", "delta", "A", "B", "C", "D"], eager_in, script_in):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5), name
