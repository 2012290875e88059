"""Figures of the explanation measurements: class-average maps over the mean face of each class,
and a note written into saliency panels whose map had to be replaced (an empty Grad-CAM). Only
draws; the numbers come from ferkit.explain (averages, faithfulness, gradcam.fill_empty)."""
import numpy as np

from data import CLASS_NAMES
from ferkit.report.figures import MAP_CMAP, new_figure, wrapped_title

def class_average_figure(averages, titles, suptitle=None, class_names=CLASS_NAMES, alpha=0.55):
    """Columns are classes; the first row the mean face of the faces averaged, then one row per
    method: its mean map over that mean face, each scaled to its own maximum (a row compares
    where, not how much).

    Args:
        averages: a ferkit.explain.averages.ClassAverages.
        titles: method name -> row title, in the order of the rows.
        suptitle: the figure's title (wrapped to its width).
        class_names: column titles.
        alpha: opacity of the maps over the faces."""
    names = list(titles)
    k = len(class_names)
    nrow = 1 + len(names)
    width = 1.25 * k + 1.2
    head = 0.7 if suptitle else 0.3
    fig = new_figure(width, 1.3 * nrow + head)
    for r in range(nrow):
        for c in range(k):
            ax = fig.add_axes([(1.2 + 1.25 * c) / width, 1 - (head + 1.3 * (r + 1) - 0.1) / (1.3 * nrow + head),
                               1.15 / width, 1.15 / (1.3 * nrow + head)])
            ax.set_xticks([])
            ax.set_yticks([])
            n = int(averages.counts[c])
            if n == 0:
                ax.text(0.5, 0.5, "no correct\nfaces", ha="center", va="center", fontsize=7)
                continue
            ax.imshow(averages.faces[c], cmap="gray", vmin=0, vmax=255)
            if r == 0:
                ax.set_title(f"{class_names[c]}\n(n={n})", fontsize=8)
            else:
                m = averages.maps[names[r - 1]][c]
                ax.imshow(m / max(float(m.max()), 1e-12), cmap=MAP_CMAP, alpha=alpha, vmin=0, vmax=1)
            if c == 0:
                label = "mean face" if r == 0 else titles[names[r - 1]]
                ax.set_ylabel(wrapped_title(label, 1.1, 8), fontsize=8)
    if suptitle:
        fig.suptitle(wrapped_title(suptitle, width - 0.2, 9), fontsize=9, y=1 - 0.05 / (1.3 * nrow + head), va="top")
    return fig


def note_panels(fig, ncol, notes, fontsize=6):
    """Write `notes` {(row, column): text} into the panels of a figures.saliency_figure, whose
    axes are added row by row, `ncol` per row (the face, then one per method).

    Args:
        fig: a figure from figures.saliency_figure.
        ncol: panels per row (1 + the number of methods).
        notes: {(row, column): text}; column 0 is the face.
        fontsize: of the notes."""
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for (i, j), text in notes.items():
        ax = axes[i * ncol + j]
        ax.text(0.5, 0.02, wrapped_title(text, 1.4, fontsize), transform=ax.transAxes, ha="center", va="bottom",
                fontsize=fontsize, color="white", bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "lw": 0})
    return fig


def empty_notes(empty, column, layer):
    """{(row, column): note} for the faces whose Grad-CAM at `layer` was empty (mask `empty`).

    Args:
        empty: bool (N,), True where the map was replaced.
        column: the panel column of the Grad-CAM maps.
        layer: the Grad-CAM layer, named in the note."""
    return {(int(i), column): f"no positive evidence at {layer}: showing the negative evidence"
            for i in np.flatnonzero(empty)}


def mark_dead(fig, dead):
    """Cross out and label the panels of a figures.patterns_figure whose filter is dead (mask
    `dead`, in the order of the patterns drawn).

    Args:
        fig: a figure from figures.patterns_figure.
        dead: bool mask (F,) from explain.dead_filters."""
    axes = [ax for ax in fig.axes if ax.images]
    for ax, is_dead in zip(axes, dead):
        if is_dead:
            ax.plot([0, 47], [0, 47], color="red", lw=1)
            ax.plot([0, 47], [47, 0], color="red", lw=1)
            ax.set_title(ax.get_title() + " (dead)", fontsize=7, color="red")
    return fig


def saliency_with_notes(model, faces, methods, title, layer=None):
    """figures.saliency_figure of an ExplainedFaces (ferkit.report.evaluate.explain_examples),
    with each empty Grad-CAM map replaced by the face's negative evidence and its panel saying
    so; what saliency.py draws, for make_report.py to draw the same. Returns (figure, number of
    faces so replaced).

    Args:
        model: the network the maps explain.
        faces: the ExplainedFaces; its Grad-CAM column is replaced in place.
        methods: the method names of its columns, in order.
        title: the figure's title.
        layer: the Grad-CAM layer used (None: explain.gradcam_layer(model))."""
    from ferkit import explain
    from ferkit.report import figures

    notes = {}
    if "gradcam" in methods:
        j = list(methods).index("gradcam")
        layer = layer or explain.gradcam_layer(model)
        name, maps = faces.columns[j]
        maps, empty = explain.fill_empty(model, faces.images, faces.explained, maps, layer)
        faces.columns[j] = (name, maps)
        notes = empty_notes(empty, j + 1, layer)
    fig = figures.saliency_figure(faces.images, faces.columns, faces.titles, faces.colors, title)
    return note_panels(fig, 1 + len(methods), notes), len(notes)


# ---------------------------------------------------------------- A4 pages for report.pdf

FAITHFULNESS_READING = (
    "each method's maps rank the face's 4x4 blocks; deletion greys them in that order and insertion puts them back "
    "onto the blurred face, tracking the probability of the predicted class (area under the curve: deletion lower "
    "is better, insertion higher). A map must beat the random order to say anything, and the centre prior to say "
    "more than \"the middle of the face\". The last columns: the rank correlation with the maps of the same network "
    "re-initialized (near 1: the map shows the image, not the model) and the share of empty maps.")
CLASS_AVERAGE_READING = (
    "each column is a class: the mean of up to N correctly classified faces, then each method's mean map over them "
    "(every map normalized to sum 1, each panel scaled to its own maximum). A hot spot that stays in place over "
    "many faces is a face part the model uses for that class.")


def faithfulness_page(rows, title, subtitle=None, reading=FAITHFULNESS_READING):
    """An A4 page with the method x metric table of explain.evaluate_methods.

    Args:
        rows: evaluate_methods()'s list of dicts.
        title: the page's title.
        subtitle: a line under it (e.g. the faces measured and the settings).
        reading: the "How to read" sentence."""
    from ferkit.explain.faithfulness import COLUMNS
    from ferkit.report.figures import Page, SMALL_SIZE, draw_table

    header = ["method", "deletion AUC\n(lower better)", "insertion AUC\n(higher better)", "insertion\n- deletion",
              "Spearman vs\nrandom weights", "empty\nmaps", "s/face"]

    def cell(row, key, fmt):
        v = row[key]
        return "-" if isinstance(v, float) and not np.isfinite(v) else fmt.format(v)

    from ferkit.explain import METHODS

    shown = {**{m: label for m, (label, _) in METHODS.items()}, "random": "random order", "centre": "centre prior"}
    body = [[cell(r, k, f) for k, _, f in COLUMNS] for r in rows]
    for line in body:  # a long name on two lines, so it stays inside its narrow column
        name = shown.get(line[0], line[0])
        line[0] = name.replace(" ", "\n", 1) if len(name) > 14 else name
    page = Page(title, reading=reading, subtitle=subtitle)
    height = 0.3 * (len(body) + 2)
    ax = page.axes(page.left, page.y - height, page.text_width, height)
    draw_table(ax, header, body, fontsize=SMALL_SIZE, fill=True)
    page.y -= height + 0.1
    return page.fig


def class_average_page(averages, titles, title, subtitle=None, reading=CLASS_AVERAGE_READING, alpha=0.55):
    """class_average_figure's grid on an A4 page (columns: classes; rows: the mean face, then
    one per method).

    Args:
        averages: a ferkit.explain.averages.ClassAverages.
        titles: method name -> row title, in the order of the rows.
        title: the page's title.
        subtitle: a line under it.
        reading: the "How to read" sentence (N is replaced by the most faces averaged).
        alpha: opacity of the maps over the faces."""
    from ferkit.report.figures import Page, SMALL_SIZE, wrap_inches

    names = list(titles)
    page = Page(title, reading=reading.replace("up to N", f"up to {int(max(averages.counts, default=0))}"),
                subtitle=subtitle)
    k = len(CLASS_NAMES)
    label_w = 0.9
    side = min((page.text_width - label_w) / k - 0.06, 1.0)
    pitch_y = side + 0.1
    for r in range(1 + len(names)):
        y = page.y - 0.35 - side - r * pitch_y
        for c in range(k):
            ax = page.axes(page.left + label_w + c * (side + 0.06), y, side, side)
            ax.set_xticks([])
            ax.set_yticks([])
            n = int(averages.counts[c])
            if r == 0:
                ax.set_title(f"{CLASS_NAMES[c]}\n(n={n})", fontsize=SMALL_SIZE)
            if n == 0:
                ax.text(0.5, 0.5, "no correct\nfaces", ha="center", va="center", fontsize=SMALL_SIZE)
                continue
            ax.imshow(averages.faces[c], cmap="gray", vmin=0, vmax=255)
            if r:
                m = averages.maps[names[r - 1]][c]
                ax.imshow(m / max(float(m.max()), 1e-12), cmap=MAP_CMAP, alpha=alpha, vmin=0, vmax=1)
        label = "mean face" if r == 0 else titles[names[r - 1]]
        page.text(page.left, y + side / 2, "\n".join(wrap_inches(label, label_w - 0.1, SMALL_SIZE, "sans-serif")),
                  fontsize=SMALL_SIZE, va="center")
    page.y -= 0.35 + (1 + len(names)) * pitch_y
    return page.fig
