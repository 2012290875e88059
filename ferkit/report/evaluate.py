"""What the analysis scripts share: a model's scores on a labelled CSV, the faces they show, and
the explanation maps drawn over them (plot_confusion.py, saliency.py and make_report.py).

    ev = evaluate(nets, ds)                    # Evaluation: probs, pred, metrics (JSON-ready)
    print(classification_text(ev, ds))         # scikit-learn's per-class table
    faces = explain_examples(model, ds, ["vanilla", "gradcam"], per_class=2, jitter=8)

Metrics come from scikit-learn (confusion_matrix, classification_report); nothing is counted by hand.
"""
import dataclasses

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

import data
from ferkit.errors import FERError
from ferkit.files import check_outputs
from ferkit.runs.layout import expand_weights
from ferkit import explain
from ferkit.infer import predict_proba
from ferkit.runs import load as runs


@dataclasses.dataclass
class Evaluation:
    probs: np.ndarray  # float32 (N, 7), averaged over the models (and TTA views)
    pred: np.ndarray  # int (N,)
    metrics: dict  # confusion_metrics(...)


def confusion_metrics(labels, pred, class_names=data.CLASS_NAMES):
    """Counts, row-normalized rates, per-class precision/recall/F1 and the three most confused
    pairs, as plain Python values (JSON-ready)."""
    k = len(class_names)
    ids = list(range(k))
    counts = confusion_matrix(labels, pred, labels=ids)
    rows = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros(counts.shape, float), where=rows > 0)
    rep = classification_report(labels, pred, labels=ids, target_names=list(class_names), output_dict=True,
                                zero_division=0)
    pairs = sorted(((rates[i, j], i, j) for i in ids for j in ids if i != j and counts[i, j] > 0),
                   key=lambda t: (-t[0], -counts[t[1], t[2]]))
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(np.asarray(labels) == np.asarray(pred))) if len(labels) else 0.0,
        "class_names": list(class_names),
        "confusion": counts.tolist(),
        "confusion_normalized": np.round(rates, 6).tolist(),
        "per_class": [{"class": name, "precision": float(rep[name]["precision"]), "recall": float(rep[name]["recall"]),
                       "f1": float(rep[name]["f1-score"]), "support": int(rep[name]["support"])}
                      for name in class_names],
        "macro_f1": float(rep["macro avg"]["f1-score"]),
        "most_confused": [{"true": class_names[i], "predicted": class_names[j], "rate": float(r),
                           "count": int(counts[i, j]), "of": int(rows[i, 0])} for r, i, j in pairs[:3]],
    }


def evaluate(nets, ds, tta=False, batch_size=256):
    """Evaluation of `nets` (one model or a list, ensembled) on a labelled Dataset."""
    if ds.labels is None:
        raise FERError(f"{ds.path}: no label column; evaluation needs labelled data")
    probs = predict_proba(nets, ds.images, tta=tta, batch_size=batch_size)
    pred = probs.argmax(axis=1)
    return Evaluation(probs, pred, confusion_metrics(ds.labels, pred))


def classification_text(ev, ds):
    """scikit-learn's per-class table, then the most confused pairs, as printable text."""
    lines = [classification_report(ds.labels, ev.pred, labels=list(range(data.NUM_CLASSES)),
                                   target_names=list(data.CLASS_NAMES), digits=3, zero_division=0).rstrip()]
    confused = ev.metrics["most_confused"]
    lines.append("most confused (true -> predicted):" if confused else "no confusions")
    lines += [f"  {p['true']} -> {p['predicted']}: {p['rate']:.1%} ({p['count']} of {p['of']})" for p in confused]
    return "\n".join(lines)


def pick_examples(labels, pred, per_class, seed=0):
    """Row indices: for each class, `per_class` faces of that class (by label, or by prediction
    when there are no labels), alternating correct and wrong predictions while both last."""
    rng = np.random.default_rng(seed)
    group = pred if labels is None else labels
    chosen = []
    for c in range(data.NUM_CLASSES):
        idx = np.flatnonzero(group == c)
        if labels is None:
            chosen += list(rng.permutation(idx)[:per_class])
            continue
        right = list(rng.permutation(idx[pred[idx] == c]))
        wrong = list(rng.permutation(idx[pred[idx] != c]))
        take = []
        while len(take) < per_class and (right or wrong):
            src = right if (len(take) % 2 == 0 and right) or not wrong else wrong
            take.append(src.pop(0))
        chosen += take
    return [int(i) for i in chosen]


@dataclasses.dataclass
class ExplainedFaces:
    rows: list  # row indices in the CSV
    images: np.ndarray  # uint8 (n, 48, 48, 1)
    titles: list  # "true Happy\npred Sad 61%" per face
    colors: list  # green: right, red: wrong, black: unlabelled
    columns: list  # [(title, maps (n, 48, 48))] per method
    explained: list  # the class each face's maps explain
    target: str  # "pred" or "true"


def explain_examples(model, ds, methods, per_class=2, target="pred", seed=0, **options):
    """Pick faces of every class from `ds` (pick_examples) and compute each method's maps for the
    predicted class (target "pred") or the true one ("true", which needs labels). `options` go
    to explain.saliency_columns (layer, samples, steps, jitter)."""
    if target not in ("pred", "true"):
        raise FERError(f"target {target!r}: choose pred or true")
    if target == "true" and ds.labels is None:
        raise FERError(f"{ds.path}: no label column, so there is no true class to explain; use --target pred")
    probs = predict_proba(model, ds.images)
    pred = probs.argmax(axis=1)
    rows = pick_examples(ds.labels, pred, per_class, seed)
    if not rows:
        raise FERError(f"{ds.path}: no faces to explain")
    classes = pred[rows] if target == "pred" else ds.labels[rows]
    columns = explain.saliency_columns(model, ds.images[rows], classes, methods, seed=seed, **options)
    names = data.CLASS_NAMES
    titles, colors = [], []
    for i in rows:
        guess = f"pred {names[pred[i]]} {probs[i, pred[i]]:.0%}"
        if ds.labels is None:
            titles.append(f"row {i}\n{guess}")
            colors.append("black")
        else:
            titles.append(f"true {names[ds.labels[i]]}\n{guess}")
            colors.append("green" if pred[i] == ds.labels[i] else "red")
    return ExplainedFaces(rows, ds.images[rows], titles, colors, columns, [int(c) for c in classes], target)


def load_models(weights_args=None, outputs=()):
    """[(model, info)] for each --weights argument (None or []: the default run), each loaded
    with ferkit.runs.load.load_run after checking that no output path is one of that run's files."""
    loaded = []
    for w in expand_weights(list(weights_args or [None])):
        check_outputs(outputs, runs.run_inputs(w))
        loaded.append(runs.load_run(w))
    return loaded
