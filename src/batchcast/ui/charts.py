"""Charts as inline SVG, drawn on the server: the dashboard needs no JavaScript, no build step and no download.

Every chart has a title, a y axis with ticks and its unit, an x axis with
period labels, and a legend whose swatch has the series' colour and dash
(Okabe and Ito's palette, readable by most colour-blind readers; dashes tell
apart series past its seven colours). Points sit at their period's place on
an x axis shared by every series, so training and application line up.
"""

from __future__ import annotations

import math
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 250
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 50, 46  # the plot's margins: y ticks, -, title and legend, x ticks
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
X_TICKS = 6


def line_chart(title: str, series: dict[str, list[tuple[str, float]]], unit: str = "", *,
               threshold: tuple[str, float] | None = None, x_title: str = "period") -> Markup:
    """A polyline per series over the union of their x labels; ``threshold`` (name, value) is drawn dashed.

    A point without a finite value (a NaN metric, say) is left out: it has no place on the axis.
    """
    series = {name: [(x, y) for x, y in values if y is not None and math.isfinite(y)]
              for name, values in series.items()}
    series = {name: values for name, values in series.items() if values}
    if not series:
        return Markup(f'<p class="empty">{escape(title)}: no data yet</p>')
    xs = sorted({x for values in series.values() for x, _ in values})
    ys = [y for values in series.values() for _, y in values] + ([threshold[1]] if threshold else [])
    scale = _Scale(xs, min(ys), max(ys))
    parts = _frame(title, scale, unit, x_title)
    for i, (name, values) in enumerate(series.items()):
        colour, dash = _style(i)
        xy = [(scale.x(x), scale.y(y)) for x, y in values]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        parts.append(f'<polyline class="series" data-series="{escape(name)}" data-points="{len(xy)}" fill="none" '
                     f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" points="{coords}"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(name)} {escape(label)}: '
                  f'{_fmt(v)}{escape(unit)}</title></circle>' for (x, y), (label, v) in zip(xy, values, strict=True)]
    names = list(series)
    if threshold:
        y = scale.y(threshold[1])
        parts.append(f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#b91c1c" stroke-width="1.5" stroke-dasharray="5 4"/>')
    parts += _legend(names, threshold=threshold[0] if threshold else None)
    return Markup("".join([*parts, "</svg>"]))


def share_chart(title: str, shares: list[tuple[str, dict[str, float]]]) -> Markup:
    """A stacked bar per period: the share of each predicted value (class), one colour per value."""
    shares = [(x, s) for x, s in shares if s]
    if not shares:
        return Markup(f'<p class="empty">{escape(title)}: no data yet</p>')
    values = sorted({v for _, s in shares for v in s})
    scale = _Scale([x for x, _ in shares], 0.0, 1.0, bars=True)
    parts = _frame(title, scale, "", "period", percent=True)
    width = max(2.0, scale.step * 0.7)
    for x, found in shares:
        below = 0.0
        for i, value in enumerate(values):
            share = found.get(value, 0.0)
            top, bottom = scale.y(below + share), scale.y(below)
            parts.append(f'<rect class="share" data-series="{escape(value)}" x="{scale.x(x) - width / 2:.1f}" '
                         f'y="{top:.1f}" width="{width:.1f}" height="{bottom - top:.1f}" fill="{_style(i)[0]}">'
                         f'<title>{escape(x)}: {escape(value)} {share:.1%}</title></rect>')
            below += share
    parts += _legend(values, bars=True)
    return Markup("".join([*parts, "</svg>"]))


def band_chart(title: str, quantiles: list[tuple[str, dict[str, float]]]) -> Markup:
    """The median per period, between its 25-75% and 5-95% quantiles (a regression's predictions)."""
    quantiles = [(x, q) for x, q in quantiles if q and {"0.05", "0.5", "0.95"} <= set(q)]
    if not quantiles:
        return Markup(f'<p class="empty">{escape(title)}: no data yet</p>')
    ys = [v for _, q in quantiles for v in q.values()]
    scale = _Scale([x for x, _ in quantiles], min(ys), max(ys))
    parts = _frame(title, scale, "", "period")
    for low, high, shade, name in (("0.05", "0.95", "#cfe3f3", "5-95%"), ("0.25", "0.75", "#8fbde0", "25-75%")):
        edge = [(scale.x(x), scale.y(q.get(high, q["0.5"]))) for x, q in quantiles]
        edge += [(scale.x(x), scale.y(q.get(low, q["0.5"]))) for x, q in reversed(quantiles)]
        parts.append(f'<polygon class="band" data-series="{name}" fill="{shade}" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in edge) + '"/>')
    median = " ".join(f"{scale.x(x):.1f},{scale.y(q['0.5']):.1f}" for x, q in quantiles)
    parts.append(f'<polyline class="series" data-series="median" data-points="{len(quantiles)}" fill="none" '
                 f'stroke="{COLOURS[0]}" stroke-width="2" points="{median}"/>')
    parts += _legend(["median", "25-75%", "5-95%"], fills={"25-75%": "#8fbde0", "5-95%": "#cfe3f3"})
    return Markup("".join([*parts, "</svg>"]))


class _Scale:
    """Where a period and a value go in the plot; y ticks at round numbers."""

    def __init__(self, xs: list[str], low: float, high: float, *, bars: bool = False):
        self.xs = {x: k for k, x in enumerate(xs)}
        self.n, self.bars = len(xs), bars
        if high == low:
            low, high = low - (abs(low) or 1) * 0.5, high + (abs(high) or 1) * 0.5
        self.ticks = _nice_ticks(low, high)
        self.low, self.high = min(self.ticks[0], low), max(self.ticks[-1], high)
        span = WIDTH - LEFT - RIGHT
        self.step = span / self.n if bars else span / max(self.n - 1, 1)

    def x(self, label: str) -> float:
        k = self.xs[label]
        if self.bars:
            return LEFT + self.step * (k + 0.5)
        return LEFT + self.step * k if self.n > 1 else LEFT + (WIDTH - LEFT - RIGHT) / 2

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (value - self.low) / (self.high - self.low)


def _frame(title: str, scale: _Scale, unit: str, x_title: str, percent: bool = False) -> list[str]:
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{LEFT}" y="16" class="title">{escape(title)}</text>']
    for tick in scale.ticks:
        y = scale.y(tick)
        label = f"{tick:.0%}" if percent else f"{_fmt(tick)}{unit}"
        parts += [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>',
                  f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="axis ytick" text-anchor="end">{escape(label)}</text>']
    labels = list(scale.xs)
    shown = labels if len(labels) <= X_TICKS else [labels[round(k * (len(labels) - 1) / (X_TICKS - 1))]
                                                   for k in range(X_TICKS)]
    for k, label in enumerate(dict.fromkeys(shown)):
        anchor = "start" if k == 0 and not scale.bars and len(shown) > 1 else (
            "end" if k == len(shown) - 1 and not scale.bars and len(shown) > 1 else "middle")
        parts.append(f'<text x="{scale.x(label):.1f}" y="{HEIGHT - BOTTOM + 16}" class="axis xtick" '
                     f'text-anchor="{anchor}">{escape(label[:16])}</text>')
    bottom = HEIGHT - BOTTOM
    parts += [f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" class="axisline"/>',
              f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 8}" class="axis-title" '
              f'text-anchor="middle">{escape(x_title)}</text>']
    return parts


def _legend(names: list[str], *, threshold: str | None = None, bars: bool = False,
            fills: dict[str, str] | None = None) -> list[str]:
    """A row under the title: each series' swatch (its colour and dash, or a filled box) and its name."""
    parts, x = ['<g class="legend">'], LEFT
    for i, name in enumerate(names):
        colour, dash = _style(i)
        if bars or (fills and name in fills):
            parts.append(f'<rect x="{x}" y="26" width="14" height="10" fill="{(fills or {}).get(name, colour)}"/>')
        else:
            parts.append(f'<line x1="{x}" x2="{x + 16}" y1="31" y2="31" stroke="{colour}" stroke-width="2.5" '
                         f'stroke-dasharray="{dash}"/>')
        parts.append(f'<text x="{x + 20}" y="35" class="legend-name" data-colour="{colour}">{escape(name)}</text>')
        x += 30 + 7 * len(name)
    if threshold:
        parts += [f'<line x1="{x}" x2="{x + 16}" y1="31" y2="31" stroke="#b91c1c" stroke-dasharray="5 4"/>',
                  f'<text x="{x + 20}" y="35" class="legend-name">{escape(threshold)}</text>']
    return [*parts, "</g>"]


def _style(i: int) -> tuple[str, str]:
    return COLOURS[i % len(COLOURS)], DASHES[(i // len(COLOURS)) % len(DASHES)]


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    raw = (high - low) / (count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [start + k * step for k in range(count + 2)]
    return [t for t in ticks if t <= high + step * 0.999][:count + 1]


def _fmt(value: float) -> str:
    return f"{value:.3g}"
