"""The ISIC 2018 lesion segmentation challenge's metric (task 1), for ``configs/evaluate.yaml``.

ISIC ranks submissions by the *threshold Jaccard*: each image's Jaccard index between the
predicted and the true lesion, at the image's original size, counted as 0 when it is below
0.65, averaged over the images. An image without lesion in either mask scores 1, as the
challenge's scorer (``isic-challenge-scoring``) counts it.
"""

from __future__ import annotations

import torch
from monai.metrics import CumulativeIterationMetric


class ThresholdJaccard(CumulativeIterationMetric):
    """Per-image Jaccard index of the foreground, counted as 0 below ``threshold``, averaged.

    Inputs are label maps of any spatial shape (each image its own size), foreground where
    non-zero (0/255 lesion masks, or any class but background), batch first: ``(B, ...)``
    tensors or lists of unbatched ones, as ``IgniteMetricHandler`` passes decollated items.

    Args:
        threshold: Jaccard values below it count as 0; 0.65 is ISIC's, 0 the plain mean Jaccard.

    Example::

        metric = ThresholdJaccard(threshold=0.65)
        metric([torch.tensor([[0, 255], [255, 255]])], [torch.tensor([[0, 255], [0, 255]])])
        metric.aggregate()  # tensor(0.6667) -> 0.6667 >= 0.65 is kept
    """

    def __init__(self, threshold: float = 0.65) -> None:
        super().__init__()
        self.threshold = float(threshold)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if y_pred.shape != y.shape:
            raise ValueError(f"prediction {tuple(y_pred.shape)} and label {tuple(y.shape)} differ in shape")
        predicted, true = (y_pred != 0).flatten(1), (y != 0).flatten(1)
        intersection = (predicted & true).sum(1, dtype=torch.float64)
        union = (predicted | true).sum(1, dtype=torch.float64)
        jaccard = torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))
        return jaccard[:, None]

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        jaccard = self.get_buffer()
        if not isinstance(jaccard, torch.Tensor) or jaccard.numel() == 0:
            raise ValueError("no images were scored")
        return torch.where(jaccard >= self.threshold, jaccard, torch.zeros_like(jaccard)).mean()
