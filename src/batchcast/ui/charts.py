"""Line charts as inline SVG, drawn on the server: the dashboard needs no JavaScript and no build step."""

from __future__ import annotations

import math
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 560, 180, 36
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")


def line_chart(title: str, series: dict[str, list[tuple[str, float]]], unit: str = "") -> Markup:
    """One SVG with a polyline per series; x is the point's position, labelled by its first and last x.

    A point without a finite value (a NaN metric, say) is left out: it has no place on the axis.
    """
    series = {name: [(x, y) for x, y in values if y is not None and math.isfinite(y)]
              for name, values in series.items()}
    points = [y for values in series.values() for _, y in values]
    if not points:
        return Markup(f'<p class="empty">{escape(title)}: no data yet</p>')
    low, high = min(points), max(points)
    span = (high - low) or abs(high) or 1.0
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{PAD}" y="14" class="title">{escape(title)}</text>',
             f'<text x="2" y="{PAD}" class="axis">{_fmt(high)}{escape(unit)}</text>',
             f'<text x="2" y="{HEIGHT - PAD}" class="axis">{_fmt(low)}{escape(unit)}</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 8}" y2="{HEIGHT - PAD}" stroke="#999"/>']
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        xy = [(_x(k, len(values)), _y(y, low, span)) for k, (_, y) in enumerate(values)]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        parts.append(f'<polyline class="series" data-series="{escape(name)}" data-points="{len(xy)}" '
                     f'fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(label)}: {_fmt(v)}'
                  f'{escape(unit)}</title></circle>' for (x, y), (label, v) in zip(xy, values, strict=True)]
        parts.append(f'<text x="{WIDTH - 150}" y="{14 + 14 * i}" fill="{colour}" class="legend">{escape(name)}</text>')
    first, last = _labels(series)
    parts += [f'<text x="{PAD}" y="{HEIGHT - 12}" class="axis">{escape(first)}</text>',
              f'<text x="{WIDTH - 8}" y="{HEIGHT - 12}" class="axis" text-anchor="end">{escape(last)}</text>', "</svg>"]
    return Markup("".join(parts))


def _x(k: int, n: int) -> float:
    return PAD + (WIDTH - PAD - 8) * (k / (n - 1) if n > 1 else 0.5)


def _y(value: float, low: float, span: float) -> float:
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / span


def _labels(series: dict[str, list[tuple[str, float]]]) -> tuple[str, str]:
    labels = sorted(label for values in series.values() for label, _ in values)
    return labels[0], labels[-1]


def _fmt(value: float) -> str:
    return f"{value:.3g}"
