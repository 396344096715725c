"""A training run's curves as one SVG picture, from the TensorBoard logs train.yaml writes.

    python bench/plot_training.py RUN_DIR/tensorboard --out docs/training_isic2018.svg

Two panels against the epoch: the training loss (the mean of each epoch's iterations) and
the validation DSC (``val_dsc``), the metric that selects the saved model; the best epoch is
marked. Reads the logs with TensorBoard's own event reader; writes plain SVG (no plotting
library), so the picture opens in any browser and diffs as text.
"""

from __future__ import annotations

import argparse
import html
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

logger = logging.getLogger(__name__)

PANEL_WIDTH, PANEL_HEIGHT, MARGIN = 420, 260, 50


def read_curves(log_dir: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(epoch, mean training loss) and (epoch, val_dsc) pairs of the run in ``log_dir``."""
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    for needed in ("train_loss", "val_dsc"):
        if needed not in tags:
            raise SystemExit(f"error: {log_dir} holds no '{needed}' scalars (found: {', '.join(tags) or 'none'})")
    val = sorted({e.step: e.value for e in events.Scalars("val_dsc")}.items())
    # train_loss is logged per iteration; an epoch's iterations lie between two val_dsc wall times
    val_times = sorted(e.wall_time for e in events.Scalars("val_dsc"))
    per_epoch: dict[int, list[float]] = defaultdict(list)
    # an iteration logged twice (a run killed mid-epoch, then resumed) counts once: its last time
    for event in {e.step: e for e in events.Scalars("train_loss")}.values():
        epoch = 1 + sum(t < event.wall_time for t in val_times)
        per_epoch[epoch].append(event.value)
    loss = [(epoch, sum(v) / len(v)) for epoch, v in sorted(per_epoch.items()) if epoch <= (val[-1][0] if val else 0)]
    return loss, val


def panel(points: Sequence[tuple[int, float]], title: str, x0: float, best: tuple[int, float] | None) -> list[str]:
    """SVG elements of one line chart at horizontal offset ``x0``."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_lo, x_hi = min(xs), max(max(xs), min(xs) + 1)
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.05 or 0.01
    y_lo, y_hi = y_lo - pad, y_hi + pad
    w, h = PANEL_WIDTH - 2 * MARGIN, PANEL_HEIGHT - 2 * MARGIN

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + MARGIN + w * (x - x_lo) / (x_hi - x_lo), MARGIN + h * (1 - (y - y_lo) / (y_hi - y_lo))

    line = " ".join("{:.1f},{:.1f}".format(*at(x, y)) for x, y in points)
    parts = [
        f'<rect x="{x0 + MARGIN}" y="{MARGIN}" width="{w}" height="{h}" fill="none" stroke="#999"/>',
        f'<polyline points="{line}" fill="none" stroke="steelblue" stroke-width="1.5"/>',
        f'<text x="{x0 + PANEL_WIDTH / 2}" y="{MARGIN - 12}" font-size="13" text-anchor="middle">{html.escape(title)}</text>',
        f'<text x="{x0 + PANEL_WIDTH / 2}" y="{PANEL_HEIGHT - 12}" font-size="11" text-anchor="middle">epoch</text>',
    ]
    for i in range(5):
        y = y_lo + (y_hi - y_lo) * i / 4
        _, py = at(x_lo, y)
        parts.append(f'<text x="{x0 + MARGIN - 4}" y="{py + 4:.1f}" font-size="10" text-anchor="end">{y:.3f}</text>')
    for x in sorted({x_lo, x_hi, *range(0, x_hi + 1, max(1, (x_hi - x_lo) // 5 or 1))}):
        if x_lo <= x <= x_hi:
            px, _ = at(x, y_lo)
            parts.append(f'<text x="{px:.1f}" y="{MARGIN + h + 14}" font-size="10" text-anchor="middle">{x}</text>')
    if best is not None:
        bx, by = at(*best)
        parts.append(f'<circle cx="{bx:.1f}" cy="{by:.1f}" r="4" fill="crimson"/>')
        parts.append(
            f'<text x="{bx:.1f}" y="{by + 16:.1f}" font-size="10" text-anchor="middle">'
            f"best {best[1]:.4f} (epoch {best[0]})</text>"
        )
    return parts


def curves_svg(loss: Sequence[tuple[int, float]], val: Sequence[tuple[int, float]]) -> str:
    """Both panels side by side."""
    best = max(val, key=lambda p: p[1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * PANEL_WIDTH}" height="{PANEL_HEIGHT}" font-family="sans-serif">',
        '<rect width="100%" height="100%" fill="white"/>',
        *panel(loss, "training loss (BCE + Dice), epoch mean", 0, None),
        *panel(val, "validation DSC (pooled)", PANEL_WIDTH, best),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("log_dir", type=Path, help="the run's tensorboard folder")
    parser.add_argument("--out", type=Path, required=True, help="the SVG file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # its reader logs every file it opens
    loss, val = read_curves(args.log_dir)
    if not val:
        raise SystemExit(f"error: {args.log_dir} holds no validated epoch yet")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(curves_svg(loss, val), encoding="utf-8")
    logger.info("wrote %s: %d epochs, best val_dsc %.4f", args.out, len(val), max(v for _, v in val))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
