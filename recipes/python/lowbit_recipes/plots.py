"""The recipes' figures, drawn with matplotlib (installed by scripts/setup.sh): loss curves and a
bar chart of the quantization table. Each figure carries a title and the run's configuration."""

from __future__ import annotations

import textwrap


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _caption(fig, text: str) -> None:
    if text:
        fig.text(0.01, 0.01, textwrap.fill(text, 150), fontsize=7, color="0.3", va="bottom", ha="left")


def save_loss_curves(path: str, series: dict[str, list[tuple[float, float]]], title: str, caption: str = "",
                     marks: dict[str, list[tuple[float, float]]] | None = None) -> None:
    """One line per named series of (step, loss) points on shared axes, plus optional point series
    ``marks`` (e.g. validation losses) drawn as markers; ``caption`` (the run's config) below."""
    if not any(series.values()):
        raise ValueError("save_loss_curves: no points to draw")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, points in series.items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=name, linewidth=1.5)
    for name, points in (marks or {}).items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, "o--", label=name, markersize=5, linewidth=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats per byte)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.subplots_adjust(bottom=0.2)
    _caption(fig, caption)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_table_chart(path: str, rows: list[dict], title: str, caption: str = "") -> None:
    """Bars per format (table row): perplexity (lower is better, the float row as a dashed line)
    and decode tokens/s; each bar labelled with its value."""
    if not rows:
        raise ValueError("save_table_chart: no rows")
    plt = _pyplot()
    names = [r["technique"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.45 * len(rows) + 2.6), sharey=True)
    ys = list(range(len(rows)))
    ppl = [r["perplexity"] for r in rows]
    lo, hi = min(ppl), max(ppl)
    span = max(hi - lo, 1e-3 * hi)
    # Perplexities differ by percents: the axis starts near the best row (said in the label), and
    # each bar is labelled with its value and its change against the float row.
    left_labels = [f"{r['perplexity']:.3f}" + ("" if r.get("baseline") or "perplexity_change_pct" not in r
                                               else f" ({r['perplexity_change_pct']:+.2f}%)") for r in rows]
    panels = [(left, "perplexity", "validation perplexity (lower is better; axis from "
               f"{max(0.0, lo - 0.6 * span):.3g})", left_labels, (max(0.0, lo - 0.6 * span), hi + 0.6 * span)),
              (right, "tokens_per_s", "decode tokens/s (higher is better)",
               [f"{r['tokens_per_s']:.1f}" for r in rows], (0, max(r["tokens_per_s"] for r in rows) * 1.18))]
    for ax, key, label, labels, xlim in panels:
        values = [r[key] for r in rows]
        bars = ax.barh(ys, values, color=["0.55" if r.get("baseline") else "tab:blue" for r in rows])
        ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
        ax.set_xlabel(label)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_xlim(*xlim)
        base = [r[key] for r in rows if r.get("baseline")]
        if base:
            ax.axvline(base[0], color="0.3", linestyle="--", linewidth=1)
    left.set_yticks(ys, names)
    left.invert_yaxis()
    fig.suptitle(title)
    # Room for the longest row name (e.g. autoquant's list of chosen formats), ~0.075 inch a character.
    left = min(0.45, max(0.22, (0.3 + 0.075 * max(len(n) for n in names)) / fig.get_figwidth()))
    fig.subplots_adjust(left=left, bottom=0.8 / (0.45 * len(rows) + 2.6) + 0.08, wspace=0.08)
    _caption(fig, caption)
    fig.savefig(path, dpi=110)
    plt.close(fig)
