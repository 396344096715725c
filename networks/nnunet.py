"""UltraLight VM-UNet inside nnU-Net v2: the network class nnU-Net's plans name, and the plans.

``python -m networks.nnunet DATASET`` (after nnU-Net's ``nnUNetv2_plan_and_preprocess``) writes
``nnUNetPlans_ULVMUNet.json`` beside ``nnUNetPlans.json`` in the dataset's preprocessed folder:
the same configurations and preprocessed data, with :class:`NNUNetUltraLightVMUNet` as the
network of ``2d`` (and ``3d_fullres`` where nnU-Net planned it) and every patch axis rounded
down to a multiple of 32. nnU-Net's own commands then train and predict with it
(``nnUNetv2_train DATASET 2d 0 -p nnUNetPlans_ULVMUNet``).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from .files import write_text_atomically
from .ultralight_vmunet import SIZE_MULTIPLE, UltraLightVMUNet

__all__ = ["NNUNetUltraLightVMUNet", "PlansError", "stage_strides", "ulvmunet_plans", "write_plans"]

logger = logging.getLogger(__name__)

#: The plans identifier (``-p``) of the written plans, and the nnU-Net plans they are made from.
PLANS_NAME = "nnUNetPlans_ULVMUNet"
SOURCE_PLANS = "nnUNetPlans"
#: nnU-Net's configurations that get the network; the low-resolution cascade is left out.
CONFIGURATIONS = ("2d", "3d_fullres")
DEFAULT_CHANNELS = (8, 16, 24, 32, 48, 64)
#: Five 2x poolings behind a first stage at full resolution, in nnU-Net's terms (per stage).
STAGE_STRIDES = (1, 2, 2, 2, 2, 2)


def stage_strides(spatial_dims: int) -> list[list[int]]:
    """The network's ``strides`` as nnU-Net's plans write them, e.g. ``[[1, 1], [2, 2], ...]``."""
    return [[s] * spatial_dims for s in STAGE_STRIDES]


class _DeepSupervision(nn.Module):
    """``network.decoder`` as nnU-Net's trainer sees it: the ``deep_supervision`` switch it turns
    on for training and off for its final validation and for prediction, and the extra 1x1 heads (``seg_layers``, the name
    nnU-Net's ``load_pretrained_weights`` leaves out, as for its own networks).

    The heads read the decoder's sums at 1/4, 1/8 and 1/16 (the inputs of ``decoder5``,
    ``decoder4`` and ``decoder3``, kept by hooks, so that the network's forward pass stays the
    one definition); the 1/2 output is the network's own ``final`` layer before its upsampling.
    """

    def __init__(self, spatial_dims: int, widths: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.deep_supervision = bool(widths)
        self.seg_layers = nn.ModuleList(Conv[Conv.CONV, spatial_dims](w, num_classes, kernel_size=1) for w in widths)
        self.kept: list[torch.Tensor] = []
        # A network built without heads (nnU-Net's predictor) loads the checkpoint of one trained with them.
        self.register_load_state_dict_pre_hook(self._drop_heads_it_lacks)

    def keep_input(self, stage: nn.Module, args: tuple) -> None:
        if self.deep_supervision:
            self.kept.append(args[0])

    def keep_output(self, stage: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if self.deep_supervision:
            self.kept.append(output)

    def _drop_heads_it_lacks(self, module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        if not self.seg_layers:
            for key in [k for k in state_dict if k.startswith(prefix + "seg_layers.")]:
                del state_dict[key]


class NNUNetUltraLightVMUNet(UltraLightVMUNet):
    """:class:`UltraLightVMUNet` as nnU-Net v2 builds it from a plans file.

    nnU-Net calls the class with ``input_channels``, ``num_classes`` and ``deep_supervision`` and
    the plans' ``arch_kwargs`` (``strides``, ``channels``, ``pvm_groups``). Built without deep
    supervision it is exactly :class:`UltraLightVMUNet` (same parameters, state dict and
    output: the logits). With it, three 1x1 heads are added (``75 * num_classes`` parameters at
    the default widths) and, while ``decoder.deep_supervision`` is on, the output is the list
    nnU-Net's loss expects, one map per scale of ``strides``: full size, 1/2 (the network's own
    last layer), 1/4, 1/8, 1/16. nnU-Net turns it off for its final validation and for
    prediction, and its predictor builds the network without heads and loads the trained
    weights without them.

    Args:
        input_channels: image channels (nnU-Net's name for ``in_channels``).
        num_classes: output maps (nnU-Net's segmentation heads, background included).
        deep_supervision: add the heads and start with the list output on.
        strides: the per-stage strides nnU-Net derives the deep-supervision scales from; must be
            the network's own (:func:`stage_strides`), which also gives the spatial dimensions.
        channels: the six stage widths, see :class:`UltraLightVMUNet`.
        pvm_groups: the PVM parallel degree, see :class:`UltraLightVMUNet`.

    Shape:
        (batch, input_channels, *spatial) -> (batch, num_classes, *spatial), or with deep
        supervision on a list of five such maps, the spatial sizes divided by 1, 2, 4, 8, 16.

    Example:
        >>> net = NNUNetUltraLightVMUNet(3, 2, deep_supervision=True, strides=stage_strides(2))
        >>> [tuple(o.shape) for o in net(torch.rand(1, 3, 64, 64))][:3]
        [(1, 2, 64, 64), (1, 2, 32, 32), (1, 2, 16, 16)]
        >>> net.decoder.deep_supervision = False
        >>> net(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 2, 64, 64])
    """

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        deep_supervision: bool = False,
        strides: Sequence[Sequence[int]] = tuple(stage_strides(2)),
        channels: Sequence[int] = DEFAULT_CHANNELS,
        pvm_groups: int = 4,
    ) -> None:
        spatial_dims = len(strides[0]) if strides else 0
        if spatial_dims not in (2, 3) or [list(s) for s in strides] != stage_strides(spatial_dims):
            raise ValueError(
                f"strides must be the network's five 2x poolings, {stage_strides(2)} or {stage_strides(3)}, "
                f"got {[list(s) for s in strides]}: write the plans with `python -m networks.nnunet`"
            )
        super().__init__(spatial_dims, input_channels, num_classes, channels=channels, pvm_groups=pvm_groups)
        # Created after the network so that its initialisation draws what UltraLightVMUNet's does.
        self.decoder = _DeepSupervision(spatial_dims, channels[1:4] if deep_supervision else (), num_classes)
        for stage in (self.decoder3, self.decoder4, self.decoder5):  # decoder sums at 1/16, 1/8, 1/4
            stage.register_forward_pre_hook(self.decoder.keep_input)
        self.final.register_forward_hook(self.decoder.keep_output)  # logits at 1/2, before the upsampling

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if not self.decoder.deep_supervision:
            return super().forward(x)
        if not self.decoder.seg_layers:
            raise RuntimeError("deep supervision was switched on in a network built without it (deep_supervision=False)")
        self.decoder.kept = []
        out = super().forward(x)
        at16, at8, at4, at2 = self.decoder.kept
        self.decoder.kept = []
        heads = self.decoder.seg_layers
        return [out, at2, heads[0](at4), heads[1](at8), heads[2](at16)]


#: What the plans name for nnU-Net to import: this module's import name, also under ``python -m``
#: (where ``__name__`` is ``"__main__"``).
NETWORK_CLASS = f"{__spec__.name}.{NNUNetUltraLightVMUNet.__qualname__}"


class PlansError(ValueError):
    """The dataset or its nnU-Net plans cannot give UltraLight VM-UNet plans; the message says why and what to do."""


def _round_patch(name: str, configuration: dict[str, Any], source: str) -> list[int]:
    """The configuration's patch size, each axis rounded down to a multiple of 32; an axis below 32 is refused."""
    patch = configuration["patch_size"]
    short = [axis for axis, size in enumerate(patch) if size < SIZE_MULTIPLE]
    if short:
        raise PlansError(
            f"{source}: configuration '{name}' has patch_size {patch}, and UltraLightVMUNet needs every axis a "
            f"multiple of {SIZE_MULTIPLE} (five 2x poolings); axis {short[0]} is below {SIZE_MULTIPLE}, because "
            f"nnU-Net fitted the patch to the images (median size {configuration.get('median_image_size_in_voxels')}). "
            f"Resample or pad the raw images to at least {SIZE_MULTIPLE} voxels along that axis and plan again, "
            f"or leave the configuration out (--configurations with the others)"
        )
    return [size // SIZE_MULTIPLE * SIZE_MULTIPLE for size in patch]


def ulvmunet_plans(
    plans: dict[str, Any],
    channels: Sequence[int] = DEFAULT_CHANNELS,
    pvm_groups: int = 4,
    configurations: Sequence[str] | None = None,
    source: str = SOURCE_PLANS + ".json",
) -> dict[str, Any]:
    """nnU-Net plans (the content of ``nnUNetPlans.json``) turned into UltraLight VM-UNet's.

    Each chosen configuration keeps nnU-Net's preprocessing, data identifier and batch size; its
    ``architecture`` becomes :class:`NNUNetUltraLightVMUNet` and its ``patch_size`` is rounded
    down to multiples of 32. The others are left out, and ``plans_name`` becomes
    :data:`PLANS_NAME`. ``configurations`` defaults to those of :data:`CONFIGURATIONS` present;
    ``source`` names the plans in error messages.

    Example:
        >>> ours = ulvmunet_plans(json.loads(Path("nnUNetPlans.json").read_text()))  # doctest: +SKIP
        >>> ours["configurations"]["2d"]["patch_size"]  # doctest: +SKIP
        [448, 576]
    """
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    try:  # the same checks as the network's, before anything is written
        UltraLightVMUNet(channels=channels, pvm_groups=pvm_groups)
    except ValueError as exc:
        raise PlansError(f"--channels/--pvm-groups: {exc}") from None
    available = list(plans.get("configurations", {}))
    if configurations is None:
        configurations = [name for name in CONFIGURATIONS if name in available]
    unknown = [name for name in configurations if name not in CONFIGURATIONS or name not in available]
    if unknown or not configurations:
        raise PlansError(
            f"{source}: configuration(s) {unknown or list(CONFIGURATIONS)} not available for UltraLightVMUNet: "
            f"it builds {list(CONFIGURATIONS)}, and the plans have {available}"
        )
    manager = PlansManager(plans)
    ours = copy.deepcopy({k: v for k, v in plans.items() if k != "configurations"})
    ours["plans_name"] = PLANS_NAME
    ours["configurations"] = {}
    for name in configurations:
        configuration = copy.deepcopy(manager.get_configuration(name).configuration)
        configuration.pop("inherits_from", None)  # resolved: the parent may not be in our plans
        configuration["patch_size"] = _round_patch(name, configuration, source)
        configuration["architecture"] = {
            "network_class_name": NETWORK_CLASS,
            "arch_kwargs": {
                "strides": stage_strides(len(configuration["patch_size"])),
                "channels": list(channels),
                "pvm_groups": pvm_groups,
            },
            "_kw_requires_import": [],
        }
        ours["configurations"][name] = configuration
    return ours


def _dataset_folder(dataset: str) -> Path:
    """The preprocessed folder of ``dataset`` (an id, or a name such as Dataset101_Lesions), as nnU-Net's commands find it."""
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import (
        maybe_convert_to_dataset_name,
    )

    if not nnUNet_preprocessed.is_set():
        raise PlansError("the environment variable nnUNet_preprocessed is not set: set it as for nnU-Net's own commands")
    root = Path(nnUNet_preprocessed.get())
    try:
        folder = root / maybe_convert_to_dataset_name(dataset)
    except (RuntimeError, ValueError):  # nnU-Net's own messages: not found, ambiguous, not an id
        folder = None
    if folder is None or not folder.is_dir():
        raise PlansError(
            f"no dataset {dataset!r} in nnUNet_preprocessed ({root}): give its id or its name (Dataset101_Lesions, say), "
            f"after nnU-Net's planning and preprocessing (nnUNetv2_plan_and_preprocess -d ID)"
        )
    return folder


def write_plans(
    folder: str | Path,
    channels: Sequence[int] = DEFAULT_CHANNELS,
    pvm_groups: int = 4,
    configurations: Sequence[str] | None = None,
) -> Path:
    """Writes ``folder/nnUNetPlans_ULVMUNet.json`` from ``folder/nnUNetPlans.json`` (see
    :func:`ulvmunet_plans`), atomically: a reader sees the old file or the whole new one."""
    folder = Path(folder)
    source = folder / f"{SOURCE_PLANS}.json"
    if not source.is_file():
        raise PlansError(f"{source} does not exist: run nnU-Net's planning first (nnUNetv2_plan_and_preprocess -d ID)")
    ours = ulvmunet_plans(json.loads(source.read_text()), channels, pvm_groups, configurations, str(source))
    for name, configuration in ours["configurations"].items():
        if not (folder / configuration["data_identifier"]).is_dir():
            logger.warning(
                "%s: no preprocessed data yet (%s): run nnUNetv2_preprocess -c %s before training it",
                name,
                folder / configuration["data_identifier"],
                name,
            )
    return write_text_atomically(folder / f"{PLANS_NAME}.json", json.dumps(ours, indent=4) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m networks.nnunet``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m networks.nnunet", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dataset", help="nnU-Net dataset id or name (e.g. 101 or Dataset101_Lesions), already planned and preprocessed"
    )
    parser.add_argument(
        "--channels",
        type=int,
        nargs=6,
        default=list(DEFAULT_CHANNELS),
        metavar="C",
        help="the six stage widths (default: the published 8 16 24 32 48 64)",
    )
    parser.add_argument("--pvm-groups", type=int, default=4, help="PVM parallel degree (default: the published 4)")
    parser.add_argument(
        "--configurations",
        nargs="+",
        choices=CONFIGURATIONS,
        default=None,
        help="which of nnU-Net's configurations get the network (default: those planned)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        path = write_plans(_dataset_folder(args.dataset), args.channels, args.pvm_groups, args.configurations)
    except (PlansError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    written = json.loads(path.read_text())["configurations"]
    patches = ", ".join(f"{name} (patch {c['patch_size']})" for name, c in written.items())
    print(f"wrote {path}: {patches}; train with nnUNetv2_train {args.dataset} CONFIGURATION FOLD -p {PLANS_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
