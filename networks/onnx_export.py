"""The network as one self-contained ONNX file: any batch size, standard operators only.

Needs the ``onnx`` extra (``pip install -e ".[onnx]"``: onnx, onnxscript, onnxruntime).
"""

import contextlib
import logging
import warnings
from typing import Iterator, Sequence

import onnx
import onnx_ir as ir
import onnx_ir.passes.common as passes
import onnxscript.optimizer
import onnxscript.rewriter
import torch
from onnxscript import opset18 as op
from onnxscript.rewriter.rules import common as rules

from .scan.export import scan_as_one_operator
from .scan.onnx_graph import TRANSLATIONS as SCAN_TRANSLATIONS

__all__ = ["export_onnx"]

# Algebraic no-ops left by the exporter's operator translations. onnxscript's full optimiser
# (its default when torch.onnx.export optimises) is not run: its fusion patterns find nothing
# to fuse in this network, so it would only lengthen the export.
_NO_OP_RULES = [
    rules.materialize_reshape_shape_rule,
    rules.reshape_reshape_rule,
    rules.div_by_1_rule,
    rules.mul_by_1_rule,
    rules.add_0_rule,
    rules.no_op_cast_rule,
    rules.no_op_transpose_rule,
    rules.unsqueeze_unsqueeze_rule,
]


def _softplus(x, beta: float = 1.0, threshold: float = 20.0):
    """``F.softplus`` as ``relu(x) + log(1 + exp(-|x|))``: onnxruntime runs these six elementwise
    operators faster than its own Softplus operator with the Where that applies PyTorch's
    threshold (docs/benchmarks.md). Above a threshold of 17 or more, ``log(1 + exp(-x))`` is below float32's rounding
    of ``x``, so the formula returns ``x`` there as PyTorch does."""

    def constant(value: float):
        return op.CastLike(op.Constant(value_float=value), x)

    scaled = x if beta == 1 else op.Mul(x, constant(beta))
    y = op.Add(op.Relu(scaled), op.Log(op.Add(op.Exp(op.Neg(op.Abs(scaled))), constant(1.0))))
    if beta != 1:
        y = op.Div(y, constant(beta))
    if threshold < 17:
        y = op.Where(op.Greater(scaled, constant(threshold)), x, y)
    return y


TRANSLATIONS = {**SCAN_TRANSLATIONS, torch.ops.aten.softplus.default: _softplus}


@contextlib.contextmanager
def _without_exporter_notices() -> Iterator[None]:
    """At every export, PyTorch's exporter warns that torchvision's operators are skipped when
    torchvision is not installed (nothing this network uses), and its own tree utilities warn
    about a deprecation inside PyTorch: nothing a user can act on."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.* is deprecated", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def _simplify(model: ir.Model) -> None:
    """Types and shapes inferred (the translations leave them open), constants folded, no-ops
    and duplicates removed, and the exporter's per-node stack traces and paths dropped: most
    of the file, and paths of this machine."""
    passes.ShapeInferencePass()(model)
    onnxscript.optimizer.fold_constants(model)
    onnxscript.rewriter.rewrite(model, _NO_OP_RULES)
    ir.passes.Sequential(
        passes.IdentityEliminationPass(),
        passes.RemoveUnusedNodesPass(),
        passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        passes.DeduplicateInitializersPass(),
        passes.CommonSubexpressionEliminationPass(),
        passes.RemoveUnusedNodesPass(),
        passes.ClearMetadataAndDocStringPass(),
        passes.NameFixPass(),
    )(model)


def export_onnx(
    network: torch.nn.Module, input_shape: Sequence[int], input_name: str = "image", output_name: str = "pred"
) -> onnx.ModelProto:
    """``network`` (switched to evaluation mode) as an ONNX model for inputs of (batch, *input_shape), any
    batch: one self-contained file once saved (``onnx.save_model``), standard operators only.

    Each selective scan is exported as one operator that :mod:`networks.scan.onnx_graph` writes
    in ONNX operators, so ``torch.export`` records a few operators instead of each scan's
    unrolled graph, which makes the export much faster than plain
    ``torch.onnx.export(network, ..., dynamo=True)`` (that works too, with the scans unrolled
    by ``torch.export``).

    Args:
        network: any module whose scans go through :func:`networks.scan.selective_scan`.
        input_shape: one input without its batch axis, e.g. ``(3, 256, 256)``, or
            ``(1, 32, 32, 32)`` for a 3D network.
        input_name, output_name: of the graph's input and output.

    Example:
        >>> from networks import UltraLightVMUNet
        >>> model = export_onnx(UltraLightVMUNet(), (3, 64, 64))  # doctest: +SKIP
        >>> onnx.save_model(model, "ulvmunet.onnx")  # doctest: +SKIP
    """
    # a batch of 2 to trace with: torch.export treats sizes 0 and 1 as constants
    example = torch.rand(2, *input_shape) * 255
    with torch.no_grad(), scan_as_one_operator(), _without_exporter_notices():
        program = torch.onnx.export(
            network.eval(),
            (example,),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            custom_translation_table=TRANSLATIONS,
            dynamo=True,
            optimize=False,
            verbose=False,
        )
    _simplify(program.model)
    model = ir.serde.serialize_model(program.model)
    del model.graph.value_info[:]  # the inferred intermediate shapes: a tenth of the file, and onnxruntime infers them again
    onnx.checker.check_model(model, full_check=True)
    custom = sorted({node.domain for node in model.graph.node} - {"", "ai.onnx"})
    if custom:
        raise RuntimeError(f"the exported graph uses non-standard operator domains {custom}")
    return model
