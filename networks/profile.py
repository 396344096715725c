"""Size and cost of UltraLight VM-UNet: ``python -m networks.profile [--size 256 ...]``.

Prints, for each PVM parallel degree (``pvm_groups``: 1, 2, 4, 8 by default; the paper's
ablation is 1, 2 and 4), the parameter count, the paper-style multiply-accumulate count
(convolutions and matmuls outside the Mamba blocks, as the paper's thop count sees them), the
full FLOP count of every matmul and convolution from ``torch.utils.flop_counter`` and the size
of the saved weights, next to the paper's figures.
"""

import argparse
import io
from typing import Dict, Optional, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from .mamba import Mamba
from .ultralight_vmunet import UltraLightVMUNet

#: The paper's ablation of the parallel degree (3x256x256, DSC on the ISIC2017 test split):
#: pvm_groups -> (parameters in millions, GFLOPs, DSC); its weight file (229.1 KB) is given for 4 only.
PAPER_ABLATION = {1: (0.136, 0.060, 0.9069), 2: (0.070, 0.060, 0.9073), 4: (0.049, 0.060, 0.9091)}
PAPER_WEIGHTS_KB = {4: 229.1}


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
    parser.add_argument("--pvm-groups", type=int, nargs="+", default=[1, 2, 4, 8], help="PVM parallel degrees")
    args = parser.parse_args(argv)
    shape = "x".join(map(str, [args.in_channels, *args.size]))
    print(f"UltraLight VM-UNet at {shape} by PVM parallel degree; the paper's figures are at 3x256x256")
    print(
        f"{'pvm_groups':>10} {'parameters':>10} {'GMAC paper-style':>16} {'GFLOP full':>10} {'weights KB':>10}"
        f" | {'paper: params':>13} {'GFLOPs':>6} {'KB':>5}"
    )
    for groups in args.pvm_groups:
        net = UltraLightVMUNet(
            spatial_dims=len(args.size), in_channels=args.in_channels, out_channels=args.out_channels, pvm_groups=groups
        )
        stats = profile(net, [1, args.in_channels, *args.size])
        params, gflops, _ = PAPER_ABLATION.get(groups, (None, None, None))
        kb = PAPER_WEIGHTS_KB.get(groups)
        print(
            f"{groups:>10} {stats['parameters']:>10,} {stats['paper_gmac']:>16.4f} {stats['full_gflop']:>10.4f}"
            f" {stats['weights_kb']:>10.1f} | {f'{params:.3f}M' if params else '-':>13}"
            f" {f'{gflops:.3f}' if gflops else '-':>6} {f'{kb:.1f}' if kb else '-':>5}"
        )
    print("GMAC paper-style leaves out the Mamba blocks' own work, as the paper's count does.")


if __name__ == "__main__":
    main()
