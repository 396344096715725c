"""UltraLight VM-UNet (Wu et al., arXiv:2403.20035): a 49,457-parameter U-Net whose deep stages
are Parallel Vision Mamba layers, with a spatial-channel attention bridge on the skips."""

from typing import Optional, Sequence

import torch
import torch.nn as nn
from monai.networks.layers.factories import Conv, Pool

from .bridge import SCAttBridge
from .pvm import PVMLayer
from .weights import init_reference_weights

__all__ = ["UltraLightVMUNet"]

#: Five 2x poolings: every spatial size must be a multiple of this.
SIZE_MULTIPLE = 32


class UltraLightVMUNet(nn.Module):
    """UltraLight VM-UNet, with the module names of the reference release (its checkpoints load
    unchanged, see :func:`networks.load_reference_weights`) and its initialisation.

    Three convolutional encoder stages (``channels[0..2]``) are followed by three PVM stages
    (``channels[3..5]``); the decoder mirrors them. Each encoder stage is conv/PVM, GroupNorm(4),
    2x max-pool and GELU; the five pooled skips pass through the attention bridge; decoder
    stages upsample (bi/trilinear, ``align_corners=True``) and add the skips.

    Args:
        spatial_dims: 2 for images, 3 for volumes (PVM layers then see D*H*W tokens).
        in_channels: input channels.
        out_channels: output channels (1 for binary segmentation with sigmoid, C for softmax).
        channels: the six stage widths; the first five must be multiples of 4 (GroupNorm with
            4 groups) and the PVM widths ``channels[2:]`` multiples of ``pvm_groups``.
        bridge: use the spatial-channel attention bridge on the skips.
        split_att: ``"fc"`` or ``"conv"`` channel-attention heads of the bridge.
        activation: ``None`` returns logits (the MONAI convention), ``"sigmoid"`` reproduces the
            reference release's probabilities, ``"softmax"`` normalises over channels.
        scan_backend: selective-scan implementation, see :data:`networks.scan.SCAN_BACKENDS`.
        pvm_groups: channel groups sharing each PVM layer's Mamba block (the paper's parallel
            degree; 4 is the published network, 1 and 2 its ablation): 136,269 parameters with
            1, 69,589 with 2, 49,457 with 4, 42,737 with 8 at the default ``channels``.

    Shape:
        (batch, in_channels, *spatial) -> (batch, out_channels, *spatial); every spatial size
        must be divisible by 32.

    Example:
        >>> net = UltraLightVMUNet(spatial_dims=2, in_channels=3, out_channels=1)
        >>> sum(p.numel() for p in net.parameters())
        49457
        >>> net(torch.rand(1, 3, 256, 256)).shape
        torch.Size([1, 1, 256, 256])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 1,
        channels: Sequence[int] = (8, 16, 24, 32, 48, 64),
        bridge: bool = True,
        split_att: str = "fc",
        activation: Optional[str] = None,
        scan_backend: str = "auto",
        pvm_groups: int = 4,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if len(channels) != 6:
            raise ValueError(f"channels needs 6 stage widths, got {list(channels)}")
        if any(c % 4 for c in channels[:5]):
            raise ValueError(
                f"each of the first five entries of channels must be a multiple of 4 (GroupNorm), got {list(channels)}"
            )
        pvm_widths = sorted(set(channels[2:]))
        if pvm_groups < 1 or any(c % pvm_groups for c in pvm_widths):
            divisors = [g for g in range(1, min(pvm_widths) + 1) if all(c % g == 0 for c in pvm_widths)]
            raise ValueError(
                f"pvm_groups must divide every PVM width {pvm_widths} (channels[2:]), got {pvm_groups}; "
                f"possible values: {divisors}"
            )
        if activation not in (None, "sigmoid", "softmax"):
            raise ValueError(f"activation must be None, 'sigmoid' or 'softmax', got {activation!r}")
        c = list(channels)
        conv = Conv[Conv.CONV, spatial_dims]

        def conv3(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(conv(cin, cout, kernel_size=3, stride=1, padding=1))

        def pvm(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(PVMLayer(cin, cout, scan_backend=scan_backend, groups=pvm_groups))

        self.spatial_dims = spatial_dims
        self.size_multiple = SIZE_MULTIPLE
        self.out_activation = {None: nn.Identity(), "sigmoid": nn.Sigmoid(), "softmax": nn.Softmax(dim=1)}[activation]
        self.bridge = bridge

        self.encoder1, self.encoder2, self.encoder3 = conv3(in_channels, c[0]), conv3(c[0], c[1]), conv3(c[1], c[2])
        self.encoder4, self.encoder5, self.encoder6 = pvm(c[2], c[3]), pvm(c[3], c[4]), pvm(c[4], c[5])
        self.scab = SCAttBridge(c, split_att, spatial_dims) if bridge else nn.Identity()
        self.decoder1, self.decoder2, self.decoder3 = pvm(c[5], c[4]), pvm(c[4], c[3]), pvm(c[3], c[2])
        self.decoder4, self.decoder5 = conv3(c[2], c[1]), conv3(c[1], c[0])
        # The reference release's names, kept so that its checkpoints load: ebn1..ebn5 are the
        # encoder norms after encoder1..encoder5 and dbn1..dbn5 the decoder norms after
        # decoder1..decoder5; despite "bn" they are GroupNorm with 4 groups. scab is the
        # spatial-channel attention bridge. Table of all names: docs/network.md.
        self.ebn1, self.ebn2, self.ebn3, self.ebn4, self.ebn5 = (nn.GroupNorm(4, n) for n in c[:5])
        self.dbn1, self.dbn2, self.dbn3, self.dbn4, self.dbn5 = (nn.GroupNorm(4, n) for n in c[4::-1])
        self.final = conv(c[0], out_channels, kernel_size=1)

        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2, stride=2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear" if spatial_dims == 2 else "trilinear", align_corners=True)
        self.gelu = nn.GELU()
        init_reference_weights(self)

    def _check_size(self, x: torch.Tensor) -> None:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                "expected input of shape (batch, channels, {} spatial sizes), got {}".format(self.spatial_dims, list(x.shape))
            )
        for size in x.shape[2:]:
            if size % self.size_multiple != 0:
                raise ValueError(
                    "UltraLightVMUNet needs every spatial size divisible by {} (five 2x poolings), "
                    "got input of shape {}; resize or pad it (e.g. monai.transforms.DivisiblePad(k={}))".format(
                        self.size_multiple, list(x.shape), self.size_multiple
                    )
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_size(x)
        t1 = self.gelu(self.pool(self.ebn1(self.encoder1(x))))  # 1/2
        t2 = self.gelu(self.pool(self.ebn2(self.encoder2(t1))))  # 1/4
        t3 = self.gelu(self.pool(self.ebn3(self.encoder3(t2))))  # 1/8
        t4 = self.gelu(self.pool(self.ebn4(self.encoder4(t3))))  # 1/16
        t5 = self.gelu(self.pool(self.ebn5(self.encoder5(t4))))  # 1/32
        out = self.gelu(self.encoder6(t5))  # the encoder goes on from the un-bridged t5
        if self.bridge:
            t1, t2, t3, t4, t5 = self.scab(t1, t2, t3, t4, t5)

        out = self.gelu(self.dbn1(self.decoder1(out))) + t5
        out = self.gelu(self.up(self.dbn2(self.decoder2(out)))) + t4
        out = self.gelu(self.up(self.dbn3(self.decoder3(out)))) + t3
        out = self.gelu(self.up(self.dbn4(self.decoder4(out)))) + t2
        out = self.gelu(self.up(self.dbn5(self.decoder5(out)))) + t1
        return self.out_activation(self.up(self.final(out)))
