"""One page a person can look at after ``configs/evaluate.yaml``: ``<output_dir>/report.html``.

The page holds the pooled metrics, the distribution of the per-image Dice (an inline SVG
histogram) and the worst cases as their overlays (ground truth green, prediction red), so
that what the model misses is found without opening CSVs and hundreds of overlay files.
It needs nothing but a browser: no script, no file from elsewhere; the overlays are linked
by their names in the same folder.
"""

from __future__ import annotations

import csv
import html
import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ignite.engine import Engine, Events

from networks.files import stem

from .atomic import write_atomically
from .image_files import GROUND_TRUTH_COLOUR, PREDICTION_COLOUR

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
HISTOGRAM_BINS = 20  # Dice in steps of 0.05
CHART_WIDTH, CHART_HEIGHT, MARGIN = 640, 220, 40


@dataclass(frozen=True)
class ImageScore:
    """One test image and its Dice at the network's resolution."""

    source: str
    dice: float

    @property
    def overlay(self) -> str:
        """The overlay's file name, as ``scripts.writers.SaveSegmentationd`` names it."""
        return f"{stem(self.source)}_overlay.jpg"


def read_scores(path: Path) -> list[ImageScore]:
    """The per-image scores of a MONAI ``<metric>_raw.csv`` (``filename,class0,...,mean``)."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return [ImageScore(row["filename"], float(row["mean"])) for row in rows]


def histogram(values: Sequence[float], bins: int = HISTOGRAM_BINS) -> list[int]:
    """Counts of ``values`` in ``bins`` equal bins over [0, 1]; 1.0 falls in the last bin, NaN in none."""
    return np.histogram([v for v in values if not math.isnan(v)], bins=bins, range=(0.0, 1.0))[0].tolist()


def histogram_svg(counts: Sequence[int], title: str) -> str:
    """An SVG bar chart of ``counts`` over [0, 1], with axis labels."""
    bins, top = len(counts), max(max(counts), 1)
    inner_w, inner_h = CHART_WIDTH - 2 * MARGIN, CHART_HEIGHT - 2 * MARGIN
    bar_w = inner_w / bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<line x1="{MARGIN}" y1="{MARGIN + inner_h}" x2="{MARGIN + inner_w}" y2="{MARGIN + inner_h}" stroke="black"/>',
    ]
    for i, count in enumerate(counts):
        height = inner_h * count / top
        x, y = MARGIN + i * bar_w, MARGIN + inner_h - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{height:.1f}" fill="steelblue">'
            f"<title>{i / bins:.2f}-{(i + 1) / bins:.2f}: {count}</title></rect>"
        )
        if count:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">{count}</text>')
    for tick in range(0, 11, 2):
        x = MARGIN + inner_w * tick / 10
        parts.append(f'<text x="{x:.1f}" y="{MARGIN + inner_h + 15}" font-size="11" text-anchor="middle">{tick / 10:.1f}</text>')
    parts.append(
        f'<text x="{CHART_WIDTH / 2}" y="{CHART_HEIGHT - 5}" font-size="12" text-anchor="middle">{html.escape(title)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _colour(rgb: Sequence[int]) -> str:
    return "rgb({},{},{})".format(*rgb)


def report_html(metrics: Mapping[str, float], scores: Sequence[ImageScore], worst: int, overlays_dir: Path) -> str:
    """The page: metrics table, Dice histogram, and the ``worst`` lowest-Dice images."""
    ordered = sorted(scores, key=lambda s: (math.isnan(s.dice), s.dice))
    dice = [s.dice for s in scores if not math.isnan(s.dice)]
    below_half = sum(d < 0.5 for d in dice)
    mean = statistics.mean(dice) if dice else float("nan")
    median = statistics.median(dice) if dice else float("nan")
    rows = "\n".join(
        f"<tr><td>{html.escape(name)}</td><td>{value:.4f}</td></tr>"
        for name, value in metrics.items()
        if isinstance(value, (int, float))
    )
    legend = (
        f'<span style="color:{_colour(GROUND_TRUTH_COLOUR)}">&#9632; ground truth</span> &nbsp; '
        f'<span style="color:{_colour(PREDICTION_COLOUR)}">&#9632; prediction</span>'
    )
    cases = []
    for score in ordered[:worst]:
        name = html.escape(Path(score.source).name)
        picture = (
            f'<img src="{html.escape(score.overlay)}" alt="{name}" style="max-width:300px;max-height:300px">'
            if (overlays_dir / score.overlay).exists()
            else "<p>(no overlay: overlay_max_size 0)</p>"
        )
        cases.append(f"<figure>{picture}<figcaption>{name}<br>Dice {score.dice:.3f}</figcaption></figure>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation report</title>
<style>body{{font-family:sans-serif;margin:2em}} figure{{display:inline-block;margin:0.5em;vertical-align:top}}
table{{border-collapse:collapse}} td{{border:1px solid #ccc;padding:2px 8px}}</style></head>
<body>
<h1>Evaluation report</h1>
<h2>Pooled metrics</h2>
<table>{rows}</table>
<h2>Per-image Dice ({len(dice)} images)</h2>
<p>mean {mean:.4f}, median {median:.4f}, {below_half} below 0.5</p>
{histogram_svg(histogram(dice), "per-image Dice (network resolution)")}
<h2>The {min(worst, len(ordered))} lowest-Dice images</h2>
<p>Contours: {legend}</p>
{"".join(cases)}
</body></html>
"""


class EvaluationReport:
    """Writes ``report.html`` into ``output_dir`` when the evaluation ends.

    Attach it after :class:`scripts.writers.MetricsSaver`: it reads the per-image scores that
    saver wrote (``<metric>_raw.csv``), so the page and the CSV files cannot disagree.

    Args:
        output_dir: the evaluation's output folder, holding the CSVs and overlays.
        metric_name: the per-image metric whose ``<metric_name>_raw.csv`` is shown.
        worst: how many of the lowest-scoring images are shown as overlays.
    """

    def __init__(self, output_dir: str | Path, metric_name: str = "dice", worst: int = 24) -> None:
        self.output_dir = Path(output_dir)
        self.metric_name = metric_name
        self.worst = int(worst)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        scores = read_scores(self.output_dir / f"{self.metric_name}_raw.csv")
        page = report_html(engine.state.metrics, scores, self.worst, self.output_dir)
        path = write_atomically(self.output_dir / REPORT_NAME, lambda p: p.write_text(page, encoding="utf-8"))
        logger.info("wrote %s (per-image Dice and the %d lowest-Dice images)", path, min(self.worst, len(scores)))
