"""Running the network on plain tensors."""

from __future__ import annotations

from typing import Any

import torch
from monai.data import MetaTensor
from monai.inferers import SimpleInferer


class PlainTensorInferer(SimpleInferer):
    """``SimpleInferer`` that gives the network its input as a plain ``torch.Tensor``.

    Batches of MONAI's loaders are ``MetaTensor``s: every operation inside the network would
    then also carry and split the batch's metadata, which on a CPU took as long as the
    arithmetic of this small network. The metadata stays on the batch for the writers.
    """

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, MetaTensor):
            inputs = inputs.as_tensor()
        return super().__call__(inputs, network, *args, **kwargs)
