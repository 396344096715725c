"""Size and cost of UltraLight VM-UNet: ``python -m networks.profile [--size 256 ...]``.

Prints the parameter count, the paper-style multiply-accumulate count (convolutions and
matmuls outside the Mamba blocks, as the paper's thop count sees them), the full FLOP count of
every matmul and convolution from ``torch.utils.flop_counter``, and the size of the saved weights.
"""

import argparse
import io
from typing import Dict, Optional, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from .mamba import Mamba
from .ultralight_vmunet import UltraLightVMUNet


def profile(net: torch.nn.Module, input_shape: Sequence[int]) -> Dict[str, float]:
    """Measures ``net`` on one zero input of ``input_shape`` (batch included).

    Returns ``parameters``, ``paper_gmac`` (Mamba internals excluded, which is what the paper's
    0.060 G counts: its CUDA path bypasses thop's hooks), ``full_gflop`` (every matmul and
    convolution; the scan's element-wise work is not in it) and ``weights_kb`` (the
    ``torch.save``'d state dict, 1 KB = 1024 bytes).
    """
    # The scan's arithmetic is element-wise and not part of the count; the token-by-token scan
    # keeps it out (the chunked one does its sum over states as a batched matmul).
    blocks = {m: m.scan_backend for m in net.modules() if isinstance(m, Mamba)}
    for block in blocks:
        block.scan_backend = "sequential"
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net.eval()(torch.zeros(*input_shape))
    finally:
        for block, backend in blocks.items():
            block.scan_backend = backend
    total = counter.get_total_flops()
    inside_mamba = sum(sum(ops.values()) for name, ops in counter.get_flop_counts().items() if name.endswith(".mamba"))
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return {
        "parameters": sum(p.numel() for p in net.parameters()),
        "paper_gmac": (total - inside_mamba) / 2 / 1e9,
        "full_gflop": total / 1e9,
        "weights_kb": buffer.tell() / 1024,
    }


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m networks.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs="+", default=[256, 256], help="spatial size (2 or 3 numbers)")
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--out-channels", type=int, default=1)
    args = parser.parse_args(argv)
    net = UltraLightVMUNet(spatial_dims=len(args.size), in_channels=args.in_channels, out_channels=args.out_channels)
    stats = profile(net, [1, args.in_channels, *args.size])
    shape = "x".join(map(str, [args.in_channels, *args.size]))
    print(f"UltraLight VM-UNet at {shape} (paper, 3x256x256: 49,457 params, 0.060 GMAC, 229.1 KB)")
    print(f"  parameters                    {stats['parameters']:,}")
    print(f"  GMAC, paper-style (no Mamba)  {stats['paper_gmac']:.4f}")
    print(f"  GFLOP, every matmul and conv  {stats['full_gflop']:.4f}")
    print(f"  saved weights                 {stats['weights_kb']:.1f} KB")


if __name__ == "__main__":
    main()
