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
from ferkit.files import output_path, refuse_folder

A4_PORTRAIT = (210 / 25.4, 297 / 25.4)  # ISO A4 in inches: every page of report.pdf
MARGIN = 0.6  # inches of white on every side of a report page
MAP_CMAP = "jet"
# One set of font sizes (points) for every report page, so text reads the same size throughout.
TITLE_SIZE, TEXT_SIZE, SMALL_SIZE = 14, 9, 7.5


def new_figure(width, height, layout=None):
    return Figure(figsize=(width, height), dpi=100, layout=layout)


def check_format(path):
    """The matplotlib format for `path`'s extension; FERError if it has none matplotlib writes."""
    refuse_folder(os.fspath(path))  # a folder: say so, not that '.(no extension)' is no image format
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


def _units(text, fits):
    """The words of `text`, each parenthesised group joined into one unit when `fits` it, so a
    line break never strands "(best val" from "%)"; a group too long for a line stays words."""
    units, group, depth = [], [], 0
    for word in text.split(" "):
        if depth == 0 and not word.startswith("("):
            units.append(word)
            continue
        group.append(word)
        depth += word.count("(") - word.count(")")
        if depth <= 0:
            joined = " ".join(group)
            units += [joined] if fits(joined) else group
            group, depth = [], 0
    return units + group


def wrap(text, width):
    """Lines of at most `width` characters, broken at spaces only (a path or command is never
    cut mid-word; a word longer than the line stays whole), never inside a short "(...)"."""
    nbsp = "\u00a0"  # textwrap breaks at ASCII whitespace only
    units = [u.replace(" ", nbsp) for u in _units(text, lambda g: len(g) <= width)]
    lines = textwrap.wrap(" ".join(units), width, break_long_words=False, break_on_hyphens=False)
    return [line.replace(nbsp, " ") for line in lines] or [""]


def text_width(text, fontsize, family="sans-serif", weight="normal"):
    """Width in inches of `text` set in one line (matplotlib's own font metrics)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(family=family, size=fontsize, weight=weight)
    return TextToPath().get_text_width_height_descent(text, prop, ismath=False)[0] / 72


def wrap_inches(text, width_in, fontsize, family="sans-serif", weight="normal"):
    """`text` as lines no wider than `width_in` inches, measured with the font: broken at spaces,
    a parenthesised group kept on one line whenever it fits one."""
    def fits(s):
        return text_width(s, fontsize, family, weight) <= width_in

    lines = []
    for unit in _units(text, fits):
        if lines and fits(lines[-1] + " " + unit):
            lines[-1] += " " + unit
        else:
            lines.append(unit)
    return lines or [""]


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


def per_class_rows(m):
    rows = [[r["class"], f"{r['precision']:.1%}", f"{r['recall']:.1%}", f"{r['f1']:.1%}", f"{r['support']:,}"]
            for r in m["per_class"]]
    rows.append(["macro average", "", "", f"{m['macro_f1']:.1%}", f"{m['n']:,}"])
    return rows


PER_CLASS_HEADER = ["class", "precision", "recall", "F1", "faces"]


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


# ---------------------------------------------------------------- A4 pages


class Page:
    """One A4 portrait page of report.pdf, laid out in inches from its bottom-left corner: a
    title, then an optional subtitle and a "How to read" sentence, each wrapped to the text
    width with the font's own metrics; `y` is the top of the free space, moving down as text is
    written, and everything stays inside the margins."""

    def __init__(self, title, reading=None, subtitle=None):
        self.fig = new_figure(*A4_PORTRAIT)
        self.width_in, self.height_in = A4_PORTRAIT
        self.left, self.right, self.bottom = MARGIN, self.width_in - MARGIN, MARGIN
        self.y = self.height_in - MARGIN
        self.paragraph(title, TITLE_SIZE, weight="bold", center=True)
        if subtitle:
            self.paragraph(subtitle, TEXT_SIZE, color="0.3", center=True)
        if reading:
            self.y -= 0.05
            self.paragraph("How to read: " + reading, TEXT_SIZE, style="italic")
        self.y -= 0.1

    @property
    def text_width(self):
        return self.right - self.left

    def box(self, x, y, w, h):
        """Inches -> figure fraction [x0, y0, w, h]."""
        return [x / self.width_in, y / self.height_in, w / self.width_in, h / self.height_in]

    def axes(self, x, y, w, h, **kw):
        return self.fig.add_axes(self.box(x, y, w, h), **kw)

    def text(self, x, y, s, **kw):
        return self.fig.text(x / self.width_in, y / self.height_in, s, **kw)

    def paragraph(self, text, fontsize=TEXT_SIZE, family="sans-serif", indent=0.0, center=False, gap=0.04, hang=0.0,
                  **kw):
        """Write `text` from `y` down, wrapped to the text width, its continuation lines indented
        `hang` inches more; returns the new `y`."""
        step = fontsize * 1.3 / 72
        pad = 0.0 if center else hang
        for k, line in enumerate(wrap_inches(text, self.text_width - indent - pad, fontsize, family,
                                             kw.get("weight", "normal"))):
            self.y -= step
            if center:
                self.text(self.width_in / 2, self.y, line, fontsize=fontsize, family=family, ha="center", **kw)
            else:
                self.text(self.left + indent + (pad if k else 0.0), self.y, line, fontsize=fontsize, family=family,
                          **kw)
        self.y -= gap
        return self.y

    def lines(self, lines, fontsize=TEXT_SIZE, family="sans-serif"):
        """paragraph() for each line, continuations hanging 0.2 in; leading spaces indent a line."""
        for line in lines:
            if not line.strip():
                self.y -= fontsize * 0.8 / 72
                continue
            indent = 0.075 * (len(line) - len(line.lstrip(" ")))
            self.paragraph(line.strip(), fontsize, family, indent=indent, gap=0.0, hang=0.2)
        return self.y


def text_height(lines, fontsize=TEXT_SIZE, family="sans-serif", width_in=None):
    """Inches that Page.lines(lines) takes."""
    width_in = width_in or A4_PORTRAIT[0] - 2 * MARGIN
    total = 0.0
    for line in lines:
        if not line.strip():
            total += fontsize * 0.8 / 72
            continue
        indent = 0.075 * (len(line) - len(line.lstrip(" ")))
        n = len(wrap_inches(line.strip(), width_in - indent - 0.2, fontsize, family))
        total += n * fontsize * 1.3 / 72
    return total


def text_pages(lines, title, fontsize=SMALL_SIZE, family="sans-serif"):
    """A4 pages of text: as many as the lines need; a line is never split between pages."""
    room = A4_PORTRAIT[1] - 2 * MARGIN - 0.6
    chunks, used = [[]], 0.0
    for line in lines:
        h = text_height([line], fontsize, family)
        if chunks[-1] and used + h > room:
            chunks.append([])
            used = 0.0
        chunks[-1].append(line)
        used += h
    pages = []
    for k, chunk in enumerate(chunks):
        page = Page(f"{title} ({k + 1}/{len(chunks)})" if len(chunks) > 1 else title)
        page.lines(chunk, fontsize, family)
        pages.append(page.fig)
    return pages


def table_pages(header, rows, title, per_page=40, col_widths=None, fontsize=SMALL_SIZE, subtitle=None):
    """A long table split over as many A4 pages as it needs."""
    pages = []
    chunks = [rows[i:i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    for k, chunk in enumerate(chunks):
        page = Page(title + (f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""), subtitle=subtitle)
        ax = page.axes(page.left, page.y - 0.22 * (len(chunk) + 1), page.text_width, 0.22 * (len(chunk) + 1))
        draw_table(ax, header, chunk, fontsize=fontsize, col_widths=col_widths, fill=True)
        pages.append(page.fig)
    return pages


def outside_texts(fig):
    """The texts of a drawn figure that run past its edges (for the report's layout test and a
    check before saving): [(text, its box in pixels)]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    page = fig.bbox
    out = []
    # Tick labels exist for ticks outside the view too (never drawn): they count through the
    # figure's tight box, which holds only what is drawn.
    ticks = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
             for tick in axis.get_major_ticks() + axis.get_minor_ticks() for label in (tick.label1, tick.label2)}
    tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    if tight.x0 < page.x0 - 0.5 or tight.x1 > page.x1 + 0.5 or tight.y0 < page.y0 - 0.5 or tight.y1 > page.y1 + 0.5:
        out.append(("(the figure's drawn extent)", tight))
    for t in fig.findobj(Text):
        if id(t) in ticks or not t.get_visible() or not t.get_text().strip():
            continue
        b = t.get_window_extent(renderer)
        if b.x0 < page.x0 - 0.5 or b.x1 > page.x1 + 0.5 or b.y0 < page.y0 - 0.5 or b.y1 > page.y1 + 0.5:
            out.append((t.get_text(), b))
    return out


def grid_axes(page, n, cols, title_h, max_side=1.4, room_right=0.0, room_below=0.0):
    """n square image axes in rows of `cols`, centred under page.y, each with `title_h` inches
    above it for its title: as large as the page allows, at most `max_side` inches. Moves page.y
    below the grid; returns the axes (row-major)."""
    rows = -(-n // cols)
    width = page.text_width - room_right
    side = min(max_side, 0.85 * width / cols, (page.y - page.bottom - room_below) / rows - title_h)
    pitch = side / 0.85
    x0 = page.left + (width - cols * pitch) / 2 + (pitch - side) / 2
    axes = []
    for i in range(n):
        r, c = divmod(i, cols)
        ax = page.axes(x0 + c * pitch, page.y - (r + 1) * (side + title_h), side, side)
        ax.set_xticks([])
        ax.set_yticks([])
        axes.append(ax)
    page.y -= rows * (side + title_h) + 0.1
    return axes


CONFUSION_READING = ("each row is one true class and sums to 100%: a cell is the share of that class's faces the "
                     "model put in the column's class, with their number below. The diagonal is each class's "
                     "recall; dark cells off it are the confusions.")


def confusion_figure(m, title, reading=CONFUSION_READING, data_name=None):
    """An A4 page: the confusion matrix in percent of each true class (counts below), the
    per-class table in percent and the most confused pairs. plot_confusion.py's image and the
    report's "Per class" page alike; `data_name` is the test file's name for the subtitle."""
    page = Page(title, reading, (f"on {data_name}: " if data_name else "")
                + f"accuracy {m['accuracy']:.2%} of {m['n']:,} faces; macro F1 {m['macro_f1']:.1%}")
    cell = 0.72
    side = 7 * cell if len(m["class_names"]) == 7 else min(5.0, 0.72 * len(m["class_names"]))
    ax = page.axes(page.left + 1.0, page.y - 0.1 - side, side, side)
    draw_confusion(ax, m, TEXT_SIZE, colorbar=page.axes(page.left + 1.0 + side + 0.15, page.y - 0.1 - side, 0.12,
                                                         side))
    page.y -= side + 0.85
    rows = per_class_rows(m)
    tab = page.axes(page.left + 0.8, page.y - 0.22 * (len(rows) + 1), page.text_width - 1.6, 0.22 * (len(rows) + 1))
    draw_table(tab, PER_CLASS_HEADER, rows, fontsize=TEXT_SIZE, fill=True)
    page.y -= 0.22 * (len(rows) + 1) + 0.15
    confused = "; ".join(f"{p['true']} as {p['predicted']} {p['rate']:.1%} ({p['count']} of {p['of']})"
                         for p in m["most_confused"])
    page.paragraph(f"Most confused (true class as predicted class): {confused or 'none'}.", TEXT_SIZE)
    return page.fig


def draw_confusion(ax, m, fontsize=TEXT_SIZE, colorbar=None):
    """Row-normalized confusion matrix (scikit-learn's ConfusionMatrixDisplay draws cells and
    labels): each cell the percent of its true class, the count below it in smaller type. The
    x labels turn 30 degrees only when the widest would not fit its cell."""
    from sklearn.metrics import ConfusionMatrixDisplay

    rates = 100 * np.asarray(m["confusion_normalized"], float)
    counts = np.asarray(m["confusion"])
    names = list(m["class_names"])
    disp = ConfusionMatrixDisplay(rates, display_labels=names)
    disp.plot(ax=ax, cmap="Blues", colorbar=False, include_values=False, im_kw={"vmin": 0, "vmax": 100})
    for (i, j), rate in np.ndenumerate(rates):
        color = "white" if rate > 55 else "black"
        ax.text(j, i - 0.14, f"{rate:.1f}%", ha="center", va="center", fontsize=fontsize, color=color)
        ax.text(j, i + 0.24, f"{counts[i, j]:,}", ha="center", va="center", fontsize=0.8 * fontsize, color=color)
    fig_w = ax.figure.get_figwidth()
    cell = ax.get_position().width * fig_w / len(names)
    if max(text_width(n, fontsize) for n in names) > 0.95 * cell:
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", rotation_mode="anchor")
    ax.tick_params(labelsize=fontsize)
    ax.set_xlabel("predicted class", fontsize=fontsize)
    ax.set_ylabel("true class", fontsize=fontsize)
    if colorbar is not None:
        bar = ax.figure.colorbar(disp.im_, cax=colorbar)
        bar.set_label("% of the true class", fontsize=SMALL_SIZE)
        bar.ax.tick_params(labelsize=SMALL_SIZE)
    return disp


def curves_page(history, title, reading=None, note=None):
    """An A4 page of one run's training curves from history.csv rows: accuracy in % (the
    epoch with the best validation accuracy marked), loss, and the learning rate."""
    reading = reading or ("accuracy is the percent of faces classified right after each epoch, on the training "
                          "faces (augmented, as trained) and on the validation set; the dot marks the epoch whose "
                          "weights were kept, the best validation accuracy. A training curve far above the "
                          "validation one is over-fitting.")
    page = Page(title, reading, note)
    epochs = history_column(history, "epoch")
    x, w = page.left + 0.65, page.text_width - 0.75
    page.y -= 0.3  # the axes' title
    acc_h = min(4.2, (page.y - page.bottom) * 0.5)
    ax = page.axes(x, page.y - acc_h, w, acc_h)
    for key, label in (("accuracy", "training"), ("val_accuracy", "validation")):
        vals = history_column(history, key)
        if vals and len(vals) == len(epochs):
            ax.plot(epochs, [100 * v for v in vals], marker="o", markersize=3, label=label)
            if key == "val_accuracy":
                best = int(np.argmax(vals))
                ax.plot([epochs[best]], [100 * vals[best]], "o", color="black", markersize=7,
                        label=f"kept: epoch {epochs[best]:.0f}, {100 * vals[best]:.2f}%")
    _finish(ax, "accuracy %", "accuracy per epoch")
    small_h = min(3.6, page.y - acc_h - 0.75 - page.bottom - 0.45)
    y = page.y - acc_h - 0.75 - small_h
    half = (w - 0.9) / 2
    for k, (keys, name, ylabel) in enumerate(((("loss", "val_loss"), "loss per epoch", "loss (cross-entropy)"),
                                             (("lr",), "learning rate per epoch", "learning rate"))):
        ax = page.axes(x + k * (half + 0.9), y, half, small_h)
        for key in keys:
            vals = history_column(history, key)
            if vals and len(vals) == len(epochs):
                ax.plot(epochs, vals, marker="o", markersize=2, label={"loss": "training", "val_loss": "validation",
                                                                       "lr": "learning rate"}[key])
        _finish(ax, ylabel, name)
    return page.fig


def _finish(ax, ylabel, title):
    ax.set_xlabel("epoch", fontsize=TEXT_SIZE)
    ax.set_ylabel(ylabel, fontsize=TEXT_SIZE)
    ax.set_title(title, fontsize=TEXT_SIZE)
    ax.tick_params(labelsize=SMALL_SIZE)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=SMALL_SIZE)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)


SALIENCY_READING = ("each row is one test face, titled with its true class and the model's prediction with its "
                    "probability (green: right, red: wrong). Each further column lays one method's map over the "
                    "face: red and yellow mark the pixels that raise the predicted class's score most, blue the "
                    "ones that matter least. Each map is scaled to its own 99.5th percentile, so compare where a "
                    "map points, not how strong it is.")


def saliency_pages(faces, columns, titles, colors, title, reading=SALIENCY_READING, alpha=0.5, subtitle=None,
                   notes=None):
    """saliency_figure's grid on as many A4 pages as its rows need (7 faces fit one page), with
    the method names over the first row of each page and one colorbar at the foot of each;
    `notes` {(face, column): text} are written inside those panels (e.g. an empty Grad-CAM)."""
    normed = [(name, normalize(maps)) for name, maps in columns]
    ncol, n = 1 + len(normed), len(faces)
    per_page = max(1, min(n, 7))
    chunks = [list(range(i, min(i + per_page, n))) for i in range(0, n, per_page)] or [[]]
    pages = []
    for k, rows in enumerate(chunks):
        page = Page(title + (f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""), reading if k == 0 else None,
                    subtitle)
        axes = grid_axes(page, len(rows) * ncol, ncol, title_h=0.4, max_side=1.25, room_below=0.75)
        head = axes[0].get_position().width * page.width_in / 0.85  # a column's width: its header wraps to it
        for r, i in enumerate(rows):
            face = np.asarray(faces[i]).reshape(48, 48)
            for j in range(ncol):
                ax = axes[r * ncol + j]
                ax.imshow(face, cmap="gray", vmin=0, vmax=255)
                if j == 0:
                    ax.set_title(titles[i], fontsize=SMALL_SIZE, color=(colors[i] if colors else "black"))
                else:
                    ax.imshow(normed[j - 1][1][i], cmap=MAP_CMAP, alpha=alpha, vmin=0, vmax=1)
                    if (notes or {}).get((i, j)):
                        ax.text(0.5, 0.03, "\n".join(wrap_inches(notes[i, j], 1.1, 5)), transform=ax.transAxes,
                                ha="center", va="bottom", fontsize=5, color="white",
                                bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "lw": 0})
                    if r == 0:
                        ax.set_title("\n".join(wrap_inches(normed[j - 1][0], head, SMALL_SIZE, weight="bold")),
                                     fontsize=SMALL_SIZE, weight="bold")
        if normed:
            cax = page.axes(page.left + 1.0, page.y - 0.25, page.text_width - 2.0, 0.12, label="<colorbar>")
            bar = page.fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=MAP_CMAP), cax=cax,
                                    orientation="horizontal")
            bar.set_label("attribution, each map scaled to its 99.5th percentile (0 to 1)", fontsize=SMALL_SIZE)
            bar.ax.tick_params(labelsize=SMALL_SIZE)
        pages.append(page.fig)
    return pages


def patterns_page(patterns, title, reading=None, subtitle=None):
    """An A4 page of activation-maximization patterns, each with its filter and the activation
    reached, each shown with its own contrast (1st-99th percentile)."""
    reading = reading or ("each square is an input image made by gradient ascent to excite one filter as much "
                          "as possible: the pattern that filter responds to. \"act\" is the mean activation the "
                          "ascent reached; near 0 it found no input that excites the filter, and the square is "
                          "noise, not a pattern.")
    page = Page(title, reading, subtitle or f"layer {patterns.layer}: the input each filter responds to")
    n = len(patterns.filters)
    axes = grid_axes(page, n, min(4, n) if n <= 16 else int(np.ceil(np.sqrt(n))), title_h=0.4, max_side=1.35)
    for ax, f, img, act in zip(axes, patterns.filters, patterns.images, patterns.activation):
        lo, hi = np.percentile(img, [1, 99])
        ax.imshow(img, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
        ax.set_title(f"filter {int(f)}\nact {act:.2f}", fontsize=SMALL_SIZE)
    return page.fig


def feature_maps_page(face, maps, layer, title, reading=None, limit=32, face_name="the face"):
    """An A4 page: the face, then up to `limit` of the layer's feature maps on one colour scale
    (as feature_maps_figure), with a colorbar."""
    k = min(maps.shape[-1], limit)
    shown = maps[..., :k]
    lo = min(0.0, float(shown.min()))
    hi = max(float(np.percentile(shown, 99.5)), lo + 1e-6)
    dead = int(np.sum(shown.reshape(-1, k).max(axis=0) <= 0))
    reading = reading or ("the first square is the input face; each other square is one channel of the layer's "
                          "output for that face, all on one colour scale, so a bright map is a strongly active "
                          "channel and a dark one is a channel this face does not use.")
    page = Page(title, reading, f"layer {layer}, {face_name}: {k} of {maps.shape[-1]} feature maps "
                                f"({maps.shape[0]}x{maps.shape[1]} each), {dead} of them zero for this face")
    top = page.y
    cols = int(np.ceil(np.sqrt(k + 1)))
    axes = grid_axes(page, k + 1, cols, title_h=0.22, max_side=1.1, room_right=0.9)
    axes[0].imshow(np.asarray(face).reshape(48, 48), cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("input", fontsize=SMALL_SIZE)
    for c in range(k):
        axes[c + 1].imshow(shown[..., c], cmap="viridis", vmin=lo, vmax=hi)
        axes[c + 1].set_title(f"map {c}", fontsize=SMALL_SIZE)
    cax = page.axes(page.right - 0.55, page.y + 0.1, 0.12, top - page.y - 0.3, label="<colorbar>")
    bar = page.fig.colorbar(ScalarMappable(norm=Normalize(lo, hi), cmap="viridis"), cax=cax)
    bar.set_label("activation (one scale for all maps)", fontsize=SMALL_SIZE)
    bar.ax.tick_params(labelsize=SMALL_SIZE)
    return page.fig
