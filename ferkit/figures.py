"""Figures and metrics shared by plot_confusion.py, saliency.py, filter_vis.py and make_report.py.

Figures are plain matplotlib `Figure` objects (no pyplot state, no display needed); `save`
writes one atomically in the format named by the file's extension.
"""
import os

import numpy as np

from ferbase.atomic import atomic_path
from ferbase.errors import FERError


def new_figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=fig.dpi)
    return path


def derived_path(path, suffix, ext=None):
    """'out/x.png' + '-maps' -> 'out/x-maps.png' (ext replaces the extension when given)."""
    stem, old = os.path.splitext(os.fspath(path))
    return f"{stem}{suffix}{ext if ext is not None else old}"


# ---------------------------------------------------------------- metrics


def confusion_metrics(labels, pred, class_names):
    """Counts, row-normalized rates, per-class precision/recall/F1 (scikit-learn) and the most
    confused pairs, as plain Python values (JSON-ready)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = len(class_names)
    counts = confusion_matrix(labels, pred, labels=list(range(k)))
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros(counts.shape, float), where=rows > 0)
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=list(range(k)),
                                                                     zero_division=0)
    pairs = [(rates[i, j], i, j) for i in range(k) for j in range(k) if i != j and counts[i, j] > 0]
    pairs.sort(key=lambda t: (-t[0], -counts[t[1], t[2]]))
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(np.asarray(labels) == np.asarray(pred))) if len(labels) else 0.0,
        "class_names": list(class_names),
        "confusion": counts.tolist(),
        "confusion_normalized": np.round(rates, 6).tolist(),
        "per_class": [{"class": class_names[i], "precision": float(precision[i]), "recall": float(recall[i]),
                       "f1": float(f1[i]), "support": int(support[i])} for i in range(k)],
        "macro_f1": float(np.mean(f1)),
        "most_confused": [{"true": class_names[i], "predicted": class_names[j], "rate": float(r),
                           "count": int(counts[i, j]), "of": int(rows[i, 0])} for r, i, j in pairs[:3]],
    }


def metrics_text(m):
    """The per-class table and the most confused pairs, as printable lines."""
    lines = [f"accuracy {m['accuracy']:.4f} on {m['n']} images; macro F1 {m['macro_f1']:.4f}",
             f"{'class':<10} {'precision':>9} {'recall':>7} {'F1':>7} {'support':>8}"]
    for r in m["per_class"]:
        lines.append(f"{r['class']:<10} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>7.3f} {r['support']:>8d}")
    if m["most_confused"]:
        lines.append("most confused (true -> predicted):")
        for p in m["most_confused"]:
            lines.append(f"  {p['true']} -> {p['predicted']}: {p['rate']:.1%} ({p['count']} of {p['of']})")
    else:
        lines.append("no confusions")
    return lines


# ---------------------------------------------------------------- figures


def draw_confusion(ax, m):
    rates = np.asarray(m["confusion_normalized"])
    counts = np.asarray(m["confusion"])
    names = m["class_names"]
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    k = len(names)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{rates[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")


def draw_table(ax, header, rows, fontsize=8, col_widths=None):
    ax.axis("off")
    if not rows:
        ax.text(0.5, 0.5, "(none)", ha="center", va="center")
        return
    table = ax.table(cellText=[[str(c) for c in r] for r in rows], colLabels=header, loc="upper center",
                     cellLoc="center", colWidths=col_widths)
    table.auto_set_font_size(False)
    table.set_fontsize(fontsize)
    table.scale(1, 1.25)


def confusion_figure(m, title):
    fig = new_figure(13, 6)
    ax = fig.add_axes([0.07, 0.18, 0.45, 0.72])
    draw_confusion(ax, m)
    ax.set_title("confusion matrix (rows normalized; counts in brackets)", fontsize=10)
    tab = fig.add_axes([0.58, 0.1, 0.4, 0.8])
    rows = [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]]
            for r in m["per_class"]]
    rows.append(["macro", "", "", f"{m['macro_f1']:.3f}", m["n"]])
    draw_table(tab, ["class", "precision", "recall", "F1", "support"], rows, fontsize=9)
    confused = "; ".join(f"{p['true']}->{p['predicted']} {p['rate']:.1%}" for p in m["most_confused"])
    tab.text(0.5, 0.12, f"most confused: {confused or 'none'}", ha="center", fontsize=8, wrap=True)
    fig.suptitle(f"{title}: accuracy {m['accuracy']:.2%} on {m['n']} images")
    return fig


def saliency_figure(faces, columns, titles, colors=None, suptitle=None, alpha=0.5, cmap="jet"):
    """Rows are faces; first column the face, then one overlay per (name, maps (N,48,48)) column."""
    from ferkit.explain import normalize

    n, ncol = len(faces), 1 + len(columns)
    fig = new_figure(1.7 * ncol, 1.9 * max(n, 1) + 0.5)
    axes = fig.subplots(max(n, 1), ncol, squeeze=False)
    normed = [(name, normalize(maps)) for name, maps in columns]
    for i in range(n):
        face = np.asarray(faces[i]).reshape(48, 48)
        ax = axes[i, 0]
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        ax.set_title(titles[i], fontsize=7, color=(colors[i] if colors else "black"))
        for j, (name, maps) in enumerate(normed, start=1):
            ax = axes[i, j]
            ax.imshow(face, cmap="gray", vmin=0, vmax=255)
            ax.imshow(maps[i], cmap=cmap, alpha=alpha, vmin=0, vmax=1)
            if i == 0:
                ax.set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def _grid(n, cols=None):
    cols = cols or int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def patterns_figure(patterns, suptitle=None):
    """A grid of activation-maximization patterns titled with filter index and activation reached."""
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
    fig.suptitle(suptitle or f"layer {patterns.layer}: inputs that excite each filter", fontsize=9)
    fig.tight_layout()
    return fig


def feature_maps_figure(face, maps, layer, limit=32, suptitle=None):
    """The face, then up to `limit` of the layer's feature maps (h, w, channels)."""
    k = min(maps.shape[-1], limit)
    rows, cols = _grid(k + 1)
    fig = new_figure(1.5 * cols, 1.6 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(np.asarray(face).reshape(48, 48), cmap="gray", vmin=0, vmax=255)
    axes[0, 0].set_title("input", fontsize=7)
    for c in range(k):
        ax = axes.ravel()[c + 1]
        ax.imshow(maps[..., c], cmap="viridis")
        ax.set_title(f"map {c}", fontsize=7)
    fig.suptitle(suptitle or f"layer {layer}: {k} of {maps.shape[-1]} feature maps "
                             f"({maps.shape[0]}x{maps.shape[1]})", fontsize=9)
    fig.tight_layout()
    return fig


def curves_figure(history, title):
    """Training curves from history.csv rows (dicts of strings)."""
    fig = new_figure(11, 4)
    axes = fig.subplots(1, 3)

    def col(key):
        vals = [float(r[key]) for r in history if r.get(key) not in (None, "")]
        return vals

    epochs = col("epoch")
    for ax, keys, name in ((axes[0], ("loss", "val_loss"), "loss"), (axes[1], ("accuracy", "val_accuracy"), "accuracy"),
                           (axes[2], ("lr",), "learning rate")):
        for key in keys:
            vals = col(key)
            if vals and len(vals) == len(epochs):
                ax.plot(epochs, vals, marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(name, fontsize=9)
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def text_page(lines, title=None, fontsize=9):
    fig = new_figure(8.27, 11.69)
    y = 0.95
    if title:
        fig.text(0.5, y, title, ha="center", fontsize=16, weight="bold")
        y -= 0.05
    for line in lines:
        fig.text(0.06, y, line, fontsize=fontsize, family="monospace")
        y -= 0.022
    return fig


def table_pages(header, rows, title, per_page=40, col_widths=None, fontsize=7):
    """A long table split over as many A4 pages as it needs."""
    pages = []
    chunks = [rows[i:i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    for k, chunk in enumerate(chunks):
        fig = new_figure(8.27, 11.69)
        fig.suptitle(title + (f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""), fontsize=11)
        ax = fig.add_axes([0.04, 0.03, 0.92, 0.9])
        draw_table(ax, header, chunk, fontsize=fontsize, col_widths=col_widths)
        pages.append(fig)
    return pages
