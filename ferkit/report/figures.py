"""Figures shared by plot_confusion.py, saliency.py, filter_vis.py and make_report.py.

Figures are plain matplotlib `Figure` objects (no pyplot state, no display needed); `save`
writes one atomically (ferkit.files) in the format named by the file's extension. This
module only draws: the numbers come from ferkit.report.evaluate and ferkit.explain.
"""
import os
import textwrap

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ferkit.errors import FERError
from ferkit.files import output_path

A4_PORTRAIT = (8.27, 11.69)
MAP_CMAP = "jet"


def new_figure(width, height, layout=None):
    return Figure(figsize=(width, height), dpi=100, layout=layout)


def check_format(path):
    """The matplotlib format for `path`'s extension; FERError if it has none matplotlib writes."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    supported = new_figure(1, 1).canvas.get_supported_filetypes()
    if ext not in supported:
        raise FERError(f"{path}: cannot write a .{ext or '(no extension)'} image; "
                       f"use one of {', '.join('.' + e for e in sorted(supported))}")
    return ext


def save(fig, path):
    """Write the figure to `path` atomically, in the format of its extension."""
    fmt = check_format(path)
    with output_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=fig.dpi)
    return path


def derived_path(path, suffix, ext=None):
    """'out/x.png' + '-maps' -> 'out/x-maps.png' (ext replaces the extension when given)."""
    stem, old = os.path.splitext(os.fspath(path))
    return f"{stem}{suffix}{ext if ext is not None else old}"


def wrap(text, width):
    """Lines of at most `width` characters, broken at spaces only (a path or command is never
    cut mid-word; a word longer than the line stays whole)."""
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def wrapped_title(text, width_inches, fontsize):
    """`text` wrapped to fit a figure `width_inches` wide at `fontsize` points (at spaces)."""
    chars = max(int(width_inches * 72 / (0.6 * fontsize)), 20)
    return "\n".join(line for part in text.split("\n") for line in wrap(part, chars))


def normalize(maps, percentile=99.5):
    """Scale each map to 0..1 by its own percentile (for display)."""
    maps = np.asarray(maps, np.float32)
    flat = maps.reshape(len(maps), -1)
    top = np.percentile(flat, percentile, axis=1).reshape((-1,) + (1,) * (maps.ndim - 1))
    return np.clip(maps / np.maximum(top, 1e-12), 0.0, 1.0)


# ---------------------------------------------------------------- confusion matrix


def draw_confusion(ax, m):
    """Row-normalized confusion matrix (scikit-learn's ConfusionMatrixDisplay), counts in brackets."""
    from sklearn.metrics import ConfusionMatrixDisplay

    rates = np.asarray(m["confusion_normalized"])
    counts = np.asarray(m["confusion"])
    disp = ConfusionMatrixDisplay(rates, display_labels=m["class_names"])
    disp.plot(ax=ax, cmap="Blues", colorbar=False, values_format=".2f", xticks_rotation=45,
              im_kw={"vmin": 0, "vmax": 1}, text_kw={"fontsize": 7})
    for (i, j), text in np.ndenumerate(disp.text_):
        text.set_text(f"{rates[i, j]:.2f}\n({counts[i, j]})")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return disp


def draw_table(ax, header, rows, fontsize=8, col_widths=None, scale=1.25, fill=False):
    """A table of strings in `ax`: at its top (rows `scale` times the font's height), or, with
    `fill`, stretched over the whole axes (size the axes to the rows, and text below it can start
    right where the axes end)."""
    ax.axis("off")
    if not rows:
        ax.text(0.5, 0.5, "(none)", ha="center", va="center")
        return None
    table = ax.table(cellText=[[str(c) for c in r] for r in rows], colLabels=header, cellLoc="center",
                     colWidths=col_widths, **({"bbox": [0, 0, 1, 1]} if fill else {"loc": "upper center"}))
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    if not fill:
        table.scale(1, scale)
    return table


def table_axes(fig, n_rows, top, row_height=0.022, left=0.04, width=0.92):
    """Axes for a `fill` table of n_rows (plus the header) hanging from `top` (figure fraction)."""
    height = row_height * (n_rows + 1)
    return fig.add_axes([left, top - height, width, height])


def per_class_rows(m):
    rows = [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]]
            for r in m["per_class"]]
    rows.append(["macro", "", "", f"{m['macro_f1']:.3f}", m["n"]])
    return rows


PER_CLASS_HEADER = ["class", "precision", "recall", "F1", "support"]


def confusion_figure(m, title):
    fig = new_figure(13, 6)
    ax = fig.add_axes([0.07, 0.18, 0.45, 0.72])
    draw_confusion(ax, m)
    ax.set_title("confusion matrix (rows normalized; counts in brackets)", fontsize=10)
    tab = fig.add_axes([0.58, 0.1, 0.4, 0.8])
    draw_table(tab, PER_CLASS_HEADER, per_class_rows(m), fontsize=9)
    confused = "; ".join(f"{p['true']}->{p['predicted']} {p['rate']:.1%}" for p in m["most_confused"])
    tab.text(0.5, 0.12, f"most confused: {confused or 'none'}", ha="center", fontsize=8, wrap=True)
    fig.suptitle(f"{title}: accuracy {m['accuracy']:.2%} on {m['n']} images")
    return fig


# ---------------------------------------------------------------- saliency


def _colorbar(fig, axes, label, norm, cmap, location="bottom"):
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, location=location, shrink=0.8,
                       aspect=30 if location == "bottom" else 25, pad=0.02)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return bar


# Saliency grid geometry, inches: image side, column pitch, space above each image for its titles
_FACE, _PITCH, _TITLES = 1.4, 1.6, 0.4


def saliency_figure(faces, columns, titles, colors=None, suptitle=None, alpha=0.5):
    """Rows are faces; first column the face, then one overlay per (name, maps (N,48,48)) column,
    each map scaled to 0..1 by its own 99.5th percentile, with one colorbar for that scale.
    Laid out by hand in inches: the title (wrapped to the page) sits above the column headers
    whatever the number of rows, and the page is never narrower than the title and colorbar."""
    n, ncol = max(len(faces), 1), 1 + len(columns)
    width = max(ncol * _PITCH + 0.3, 4.6)
    title = wrapped_title(suptitle, width - 0.3, 9) if suptitle else ""
    top = 0.15 + (title.count("\n") + 1) * 0.19 if title else 0.1
    bottom = 0.75 if columns else 0.15
    height = top + n * (_FACE + _TITLES) + bottom
    fig = new_figure(width, height)
    left = (width - ncol * _PITCH) / 2 + (_PITCH - _FACE) / 2

    def box(x_in, y_in, w_in, h_in):  # inches from the bottom-left corner -> figure fraction
        return [x_in / width, y_in / height, w_in / width, h_in / height]

    normed = [(name, normalize(maps)) for name, maps in columns]
    for i in range(len(faces)):
        face = np.asarray(faces[i]).reshape(48, 48)
        y = height - top - (i + 1) * (_FACE + _TITLES)
        for j in range(ncol):
            ax = fig.add_axes(box(left + j * _PITCH, y, _FACE, _FACE))
            ax.imshow(face, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_title(titles[i], fontsize=7, color=(colors[i] if colors else "black"))
            else:
                name, maps = normed[j - 1]
                ax.imshow(maps[i], cmap=MAP_CMAP, alpha=alpha, vmin=0, vmax=1)
                if i == 0:
                    ax.set_title(wrapped_title(name, _PITCH, 8), fontsize=8)
    if columns:
        bar_w = max((ncol - 1) * _PITCH - 0.2, 3.2)
        cax = fig.add_axes(box((width - bar_w) / 2, 0.45, bar_w, 0.12), label="<colorbar>")
        bar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=MAP_CMAP), cax=cax, orientation="horizontal")
        bar.set_label("attribution, each map scaled to its 99.5th percentile", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.08 / height, va="top")
    return fig


# ---------------------------------------------------------------- filters


def _grid(n, cols=None):
    cols = cols or int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def patterns_figure(patterns, suptitle=None):
    """A grid of activation-maximization patterns titled with filter index and activation
    reached; each pattern is an input image, shown with its own contrast (1st-99th percentile)."""
    n = len(patterns.filters)
    rows, cols = _grid(n)
    fig = new_figure(1.6 * cols, 1.75 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (f, img, act) in enumerate(zip(patterns.filters, patterns.images, patterns.activation)):
        ax = axes.ravel()[i]
        lo, hi = np.percentile(img, [1, 99])
        ax.imshow(img, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
        ax.set_title(f"filter {int(f)}\nact {act:.2f}", fontsize=7)
    fig.suptitle(wrapped_title(suptitle or f"layer {patterns.layer}: inputs that excite each filter", 1.6 * cols, 9),
                 fontsize=9)
    fig.tight_layout()
    return fig


def feature_maps_figure(face, maps, layer, limit=32, suptitle=None):
    """The face, then up to `limit` of the layer's feature maps (h, w, channels), all on one
    colour scale (0 or the lowest value, to the 99.5th percentile of the maps shown) with a
    colorbar, so a bright map is a strongly active one."""
    k = min(maps.shape[-1], limit)
    shown = maps[..., :k]
    lo = min(0.0, float(shown.min()))
    hi = max(float(np.percentile(shown, 99.5)), lo + 1e-6)
    rows, cols = _grid(k + 1)
    fig = new_figure(1.5 * cols + 0.8, 1.55 * rows + 0.9, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(np.asarray(face).reshape(48, 48), cmap="gray", vmin=0, vmax=255)
    axes[0, 0].set_title("input", fontsize=7)
    for c in range(k):
        ax = axes.ravel()[c + 1]
        ax.imshow(shown[..., c], cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(f"map {c}", fontsize=7)
    _colorbar(fig, axes, "activation (one scale for all maps)", Normalize(lo, hi), "viridis", location="right")
    dead = int(np.sum(shown.reshape(-1, k).max(axis=0) <= 0))
    fig.suptitle(wrapped_title(suptitle or f"layer {layer}: {k} of {maps.shape[-1]} feature maps "
                               f"({maps.shape[0]}x{maps.shape[1]}), {dead} of them zero for this face",
                               1.5 * cols + 0.8, 9), fontsize=9)
    return fig


# ---------------------------------------------------------------- curves and pages


def history_column(history, key):
    """Floats of one history.csv column (rows are dicts of strings); [] when any value is missing."""
    vals = [r.get(key) for r in history]
    if not vals or any(v in (None, "") for v in vals):
        return []
    return [float(v) for v in vals]


def curves_figure(history, title):
    """Training curves of one run from history.csv rows: loss, accuracy, learning rate."""
    fig = new_figure(11, 4, layout="constrained")
    axes = fig.subplots(1, 3)
    epochs = history_column(history, "epoch")
    for ax, keys, name in ((axes[0], ("loss", "val_loss"), "loss"), (axes[1], ("accuracy", "val_accuracy"), "accuracy"),
                           (axes[2], ("lr",), "learning rate")):
        for key in keys:
            vals = history_column(history, key)
            if vals and len(vals) == len(epochs):
                ax.plot(epochs, vals, marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(name, fontsize=9)
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    fig.suptitle(wrapped_title(title, 11, 10), fontsize=10)
    return fig


def cut_short_last_epoch(history):
    """Whether a time budget ended the last epoch part-way: its training accuracy is then the mean
    of the batches it ran, maybe one, not of an epoch (its validation accuracy is still the
    model's). Seen as a learning rate that reached 0 only there (--time-budget's schedule ends at
    0 when the budget is spent), or else as an epoch under half as long as the median one."""
    lrs = history_column(history, "lr")
    if len(lrs) >= 2 and lrs[-1] == 0.0 and lrs[-2] > 0.0:
        return True
    seconds = history_column(history, "seconds")
    if not seconds or len(seconds) < 3 or len(seconds) != len(history):
        return False
    durations = [b - a for a, b in zip([0.0] + seconds[:-1], seconds)]
    return durations[-1] < 0.5 * sorted(durations[:-1])[len(durations[:-1]) // 2]


# Matplotlib's ten but its grey (the line-style keys are grey), then five more unlike them: a
# plot of the report's table has a dozen runs.
RUN_COLORS = [f"C{i}" for i in range(10) if i != 7] + ["black", "gold", "navy", "lime", "crimson"]


def draw_accuracy_curves(ax, runs, val_label="validation", legend_below=False):
    """One plot of all runs: validation accuracy (solid) and training accuracy (dashed) per epoch,
    one colour per run (distinct up to 14 runs). `runs`: [(label, history rows)]."""
    from matplotlib.lines import Line2D

    colors = [RUN_COLORS[i % len(RUN_COLORS)] for i in range(len(runs))]
    handles = []
    for (label, history), color in zip(runs, colors):
        epochs = history_column(history, "epoch")
        for key, style in (("val_accuracy", "-"), ("accuracy", "--")):
            vals = history_column(history, key)
            if vals and len(vals) == len(epochs):
                n = len(vals) - (key == "accuracy" and cut_short_last_epoch(history))
                ax.plot(epochs[:n], [100 * v for v in vals[:n]], style, color=color, linewidth=1.4)
        handles.append(Line2D([], [], color=color, label=label))
    handles += [Line2D([], [], color="0.55", linestyle="-", label=val_label),  # grey: the keys are no run
                Line2D([], [], color="0.55", linestyle="--", label="training")]
    lengths = [len(history) for _, history in runs if history]
    if lengths and max(lengths) > 4 * min(lengths):  # 20 epochs beside 250: a log axis shows both
        ax.set_xscale("log")
        ax.set_xlabel("epoch (log scale)")
    else:
        ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy %")
    ax.grid(alpha=0.3)
    if legend_below:  # many runs: a legend inside would hide curves
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4)
    else:
        ax.legend(handles=handles, fontsize=7, loc="lower right", ncol=2)
    if not runs:
        ax.text(0.5, 0.5, "no runs", ha="center", transform=ax.transAxes)


def text_block(fig, lines, top, left=0.06, fontsize=9, width=95, line_step=None, family="monospace"):
    """Write `lines` from `top` (figure fraction) down, each wrapped at spaces to `width`
    characters (continuations indented); returns the next free height."""
    step = line_step or fontsize * 0.0024
    y = top
    for line in lines:
        for part in _wrapped(line, width):
            fig.text(left, y, part, fontsize=fontsize, family=family)
            y -= step
    return y


def _wrapped(line, width):
    """One line of text_block as the printed lines it takes: wrapped at spaces, continuations
    indented two more than the line."""
    indent = len(line) - len(line.lstrip(" "))
    parts = wrap(line.strip(), width - indent - 2) if line.strip() else [""]
    return [" " * (indent + (2 if k else 0)) + part for k, part in enumerate(parts)]


def text_page(lines, title=None, fontsize=9, width=95):
    fig = new_figure(*A4_PORTRAIT)
    y = 0.95
    if title:
        fig.text(0.5, y, title, ha="center", fontsize=16, weight="bold")
        y -= 0.05
    text_block(fig, lines, y, fontsize=fontsize, width=width)
    return fig


def text_pages(lines, title=None, fontsize=9, width=95):
    """text_page over as many A4 pages as the lines need; a line is never split between pages."""
    room = int((0.95 - 0.05 * bool(title) - 0.03) / (fontsize * 0.0024))  # printed lines per page
    chunks, used = [[]], 0
    for line in lines:
        n = len(_wrapped(line, width))
        if chunks[-1] and used + n > room:
            chunks.append([])
            used = 0
        chunks[-1].append(line)
        used += n
    many = len(chunks) > 1
    return [text_page(chunk, f"{title} ({k + 1}/{len(chunks)})" if title and many else title, fontsize, width)
            for k, chunk in enumerate(chunks)]


def table_pages(header, rows, title, per_page=40, col_widths=None, fontsize=7):
    """A long table split over as many A4 pages as it needs."""
    pages = []
    chunks = [rows[i:i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    for k, chunk in enumerate(chunks):
        fig = new_figure(*A4_PORTRAIT)
        fig.suptitle(title + (f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""), fontsize=11)
        ax = fig.add_axes([0.04, 0.03, 0.92, 0.9])
        draw_table(ax, header, chunk, fontsize=fontsize, col_widths=col_widths)
        pages.append(fig)
    return pages
