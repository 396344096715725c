"""The spatial-channel attention bridge (SC-Att Bridge) between encoder and decoder skips."""

from typing import Sequence, Tuple

import torch
import torch.nn as nn
from monai.networks.layers.factories import Conv, Pool

__all__ = ["SCAttBridge", "SpatialAttBridge", "ChannelAttBridge"]

Skips = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class SpatialAttBridge(nn.Module):
    """One shared dilated conv on [channel mean, channel max] gives each skip a spatial
    attention map in (0, 1): (batch, c, *spatial) -> (batch, 1, *spatial), for each of 5 skips."""

    def __init__(self, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims](2, 1, kernel_size=7, stride=1, padding=9, dilation=3)
        # The name keeps the reference release's checkpoint keys, in 3D too.
        self.shared_conv2d = nn.Sequential(conv, nn.Sigmoid())

    def _attention(self, t: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([t.mean(dim=1, keepdim=True), t.amax(dim=1, keepdim=True)], dim=1)
        return self.shared_conv2d(pooled)

    def forward(self, t1: torch.Tensor, t2: torch.Tensor, t3: torch.Tensor, t4: torch.Tensor, t5: torch.Tensor) -> Skips:
        return self._attention(t1), self._attention(t2), self._attention(t3), self._attention(t4), self._attention(t5)


class ChannelAttBridge(nn.Module):
    """The globally pooled channels of all 5 skips, mixed by one 3-tap Conv1d, give each skip
    its own channel attention (batch, c_i, 1, ...) in (0, 1) through a Linear (``split_att="fc"``)
    or a 1x1 Conv1d (``split_att="conv"``)."""

    def __init__(self, channels: Sequence[int], split_att: str = "fc", spatial_dims: int = 2) -> None:
        super().__init__()
        if split_att not in ("fc", "conv"):
            raise ValueError(f"split_att must be 'fc' or 'conv', got {split_att!r}")
        total = sum(channels[:5])
        self.split_att = split_att
        self.avgpool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.get_all_att = nn.Conv1d(1, 1, kernel_size=3, padding=1, bias=False)

        def head(c: int) -> nn.Module:
            return nn.Linear(total, c) if split_att == "fc" else nn.Conv1d(total, c, 1)

        self.att1, self.att2, self.att3, self.att4, self.att5 = (head(c) for c in channels[:5])
        self.spatial_dims = spatial_dims

    def _shape(self, out: torch.Tensor) -> torch.Tensor:
        """A head's output -> (batch, c, 1, ...) attention in (0, 1)."""
        if self.split_att == "fc":
            out = out.transpose(1, 2)  # (batch, 1, c) -> (batch, c, 1)
        return torch.sigmoid(out).reshape(list(out.shape[:2]) + [1] * self.spatial_dims)

    def forward(self, t1: torch.Tensor, t2: torch.Tensor, t3: torch.Tensor, t4: torch.Tensor, t5: torch.Tensor) -> Skips:
        pooled = [self.avgpool(t1), self.avgpool(t2), self.avgpool(t3), self.avgpool(t4), self.avgpool(t5)]
        att = self.get_all_att(torch.cat(pooled, dim=1).flatten(1).unsqueeze(1))  # (batch, 1, total)
        if self.split_att == "conv":
            att = att.transpose(1, 2)  # (batch, total, 1): channels for the 1x1 Conv1d heads
        return (
            self._shape(self.att1(att)),
            self._shape(self.att2(att)),
            self._shape(self.att3(att)),
            self._shape(self.att4(att)),
            self._shape(self.att5(att)),
        )


class SCAttBridge(nn.Module):
    """Spatial then channel attention on the 5 skips: ``s = satt * t``, ``r = s + t``,
    ``out = catt(r) * r + s``. Shapes are unchanged.

    Args:
        channels: channels of the 5 skips (extra entries are ignored).
        split_att: ``"fc"`` or ``"conv"`` channel-attention heads.
        spatial_dims: 2 or 3.
    """

    def __init__(self, channels: Sequence[int], split_att: str = "fc", spatial_dims: int = 2) -> None:
        super().__init__()
        self.catt = ChannelAttBridge(channels, split_att, spatial_dims)
        self.satt = SpatialAttBridge(spatial_dims)

    def forward(self, t1: torch.Tensor, t2: torch.Tensor, t3: torch.Tensor, t4: torch.Tensor, t5: torch.Tensor) -> Skips:
        a1, a2, a3, a4, a5 = self.satt(t1, t2, t3, t4, t5)
        s1, s2, s3, s4, s5 = a1 * t1, a2 * t2, a3 * t3, a4 * t4, a5 * t5
        r1, r2, r3, r4, r5 = s1 + t1, s2 + t2, s3 + t3, s4 + t4, s5 + t5
        c1, c2, c3, c4, c5 = self.catt(r1, r2, r3, r4, r5)
        return c1 * r1 + s1, c2 * r2 + s2, c3 * r3 + s3, c4 * r4 + s4, c5 * r5 + s5
