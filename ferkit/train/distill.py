"""Knowledge distillation (Hinton et al. 2015): a student learns from a teacher's class
probabilities alongside the labels (`train_cnn.py --teacher RUN_DIR`, repeatable: an ensemble).

Two ways (`--teacher-mode`). "cached" (the default): the teachers' probabilities are computed
once, on the unaugmented training faces (optionally averaged over the 10 TTA views), and cached in
the run folder; each batch then carries [labels | teacher probabilities] as its target, so
MixUp/CutMix mix both alike. "online": the teachers run on every batch, on the very faces the
student sees, augmented and mixed ("consistent teaching", Beyer et al. 2022), so a face the
teachers had memorized still gets an informative answer once it is shifted, erased or blended;
it costs a teacher forward pass per step (docs/RESULTS.md has both costs).
"""
import os
import time

import numpy as np

import data
from ferkit.backend import import_keras
from ferkit.cli import plural
from ferkit.errors import FERError
from ferkit.files import output_path
from ferkit.runs.layout import TEACHER_FILE
from ferkit.runs.load import load_run
from models import INPUT_SHAPE, NUM_CLASSES

keras = import_keras()  # TensorFlow's start-up notices stay off stderr


def load_teachers(paths):
    """[(model, info)] for the --teacher run folders; FERError (one line) for a teacher whose
    input or classes differ from the student's."""
    teachers = []
    for path in paths:
        model, info = load_run(path)
        names = list(info.get("class_names") or data.CLASS_NAMES)
        classes = model.output_shape[-1] if names == list(data.CLASS_NAMES) else len(names)
        if classes != NUM_CLASSES or names != list(data.CLASS_NAMES):
            raise FERError(f"--teacher {path}: predicts {classes} classes ({', '.join(map(str, names))}); the student "
                           f"learns FER2013's {NUM_CLASSES} ({', '.join(data.CLASS_NAMES)})")
        if tuple(model.input_shape[1:]) != INPUT_SHAPE:
            raise FERError(f"--teacher {path}: takes {tuple(model.input_shape[1:])} images, not {INPUT_SHAPE}")
        teachers.append((model, info))
    return teachers


def teacher_probs(paths, images, tta=False, batch_size=256):
    """Mean softmax (N, 7) of the teachers at `paths` over `images` (uint8, N x 48 x 48 x 1). A
    path ending in .npy is probabilities cached by an earlier distilled run (its teacher_probs.npy,
    for the same training faces: same file and held-out split), counted as one teacher; it
    lets a machine without the teachers' weights (a lent GPU) distil from them."""
    from ferkit.infer import predict_proba

    cached = [cached_probs(p, len(images)) for p in paths if is_probs_file(p)]
    runs = [p for p in paths if not is_probs_file(p)]
    total = sum(cached)
    if runs:  # predict_proba gives the runs' mean: weighted back to one share per run
        models = [m for m, _ in load_teachers(runs)]
        total = total + len(runs) * predict_proba(models, images, tta=tta, batch_size=batch_size)
    return (total / len(paths)).astype(np.float32)


def is_probs_file(path):
    return str(path).endswith(".npy") and os.path.isfile(path)


def training_probs(args, images, run_dir=None):
    """The teachers' probabilities on the training faces: cached in `run_dir` (a resumed run), or
    computed once by the teachers, with a line saying how long that took."""
    probs = cached_probs(run_dir, len(images)) if run_dir else None
    if probs is None:
        t0 = time.time()
        probs = teacher_probs(args.teacher, images, tta=args.teacher_tta)
        views = "10 views each" if args.teacher_tta else "1 view"
        print(f"teacher: {plural(len(args.teacher), 'teacher')} on {len(images)} training faces ({views}) "
              f"in {time.time() - t0:.0f} s", flush=True)
    return probs


def save_probs(run_dir, probs):
    """Cache the teachers' probabilities in the run folder, for --resume."""
    with output_path(os.path.join(run_dir, TEACHER_FILE)) as tmp, open(tmp, "wb") as f:  # full disk: one line
        np.save(f, probs)


def cached_probs(run_dir, n):
    """The teacher probabilities cached in `run_dir` (or the .npy file `run_dir`), or None when
    there are none; FERError (one line) when they are not `n` faces' probabilities."""
    path = run_dir if is_probs_file(run_dir) else os.path.join(run_dir, TEACHER_FILE)
    if not os.path.isfile(path):
        return None
    try:  # mapped, not read: a run folder is untrusted, its shape is checked before the data is read
        probs = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise FERError(f"{path}: unreadable teacher probabilities ({str(e).splitlines()[0][:200]}); "
                       "delete it to recompute") from None
    if probs.shape != (n, NUM_CLASSES) or not np.isfinite(probs).all():
        fix = ("it must come from a run on the same training file and held-out split (--val-split, --split-seed or --seed, "
               "--train-limit)"
               if is_probs_file(run_dir)
               else "delete it to recompute")
        raise FERError(f"{path}: teacher probabilities of shape {probs.shape}, expected ({n}, {NUM_CLASSES}); {fix}")
    return probs.astype(np.float32)


class TeacherEnsemble(keras.layers.Layer):
    """The teachers as one frozen layer: the mean of their probabilities on the faces it is
    given. Each teacher is called with training=False, which is what keeps them in inference mode
    (no augmentation, dropout or BatchNorm updates) while the student around them trains: Keras
    passes the training flag down to nested layers otherwise."""

    def __init__(self, teachers, **kwargs):
        super().__init__(trainable=False, dtype="float32", **kwargs)
        self.teachers = list(teachers)
        for teacher in self.teachers:
            teacher.trainable = False

    def call(self, faces):
        ops = keras.ops
        probs = [ops.cast(teacher(faces, training=False), "float32") for teacher in self.teachers]
        mean = probs[0] if len(probs) == 1 else ops.mean(ops.stack(probs, axis=0), axis=0)
        return ops.stop_gradient(mean)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], NUM_CLASSES)


def online_model(student, teachers):
    """The model that --teacher-mode online fits: [student's probabilities | the teachers' mean
    probabilities], 14 columns, the teachers reading the student's augmented faces (the output of
    its "augment" block; the raw input without one). Only the student's weights train and are kept
    as the run's weights; the resume state, the fitted model's, carries the frozen teachers too."""
    try:
        faces = student.get_layer("augment").output
    except ValueError:  # built without augmentation
        faces = student.inputs[0]
    taught = TeacherEnsemble(teachers, name="teachers")(faces)
    both = keras.layers.Concatenate(name="student_and_teachers", dtype="float32")([student.outputs[0], taught])
    return keras.Model(student.inputs[0], both, name=f"{student.name}_taught")


def training_setup(args, student):
    """(the model to fit, its loss, its metrics) for a student with --teacher: the student itself
    with cached teachers, the student beside its loaded teachers with online ones."""
    model = student
    if args.teacher_mode == "online":
        t0 = time.time()
        teachers = [m for m, _ in load_teachers(args.teacher)]
        model = online_model(student, teachers)
        print(f"teacher: {plural(len(teachers), 'teacher')} online, on every batch (loaded in "
              f"{time.time() - t0:.1f} s)", flush=True)
    loss = DistillationLoss(args.distill_temperature, args.distill_weight, args.label_smoothing)
    return model, loss, [accuracy]


def online_targets(labels):
    """Training targets of --teacher-mode online: [labels | 1]. The extra column tells the loss that
    this is a training batch (validation targets have the 7 label columns alone); MixUp keeps it 1."""
    return np.concatenate([labels, np.ones((len(labels), 1), labels.dtype)], axis=1)


def soften(probs, temperature):
    """softmax(log(p) / T): the teacher's probabilities at temperature T (T=1 returns them)."""
    logp = np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@keras.saving.register_keras_serializable(package="ferkit")
class DistillationLoss(keras.losses.Loss):
    """(1 - weight) * CE(labels, p) + weight * T^2 * KL(teacher_T || softmax(log(p) / T)).

    Cached teachers: y_true is [labels | teacher probabilities at T] (14 columns) in training.
    Online teachers: y_pred is [p | teacher probabilities] (online_model) and y_true [labels | 1]
    in training. A 7-column y_true (validation) gets the plain cross-entropy of p, so val_loss
    stays comparable with other runs. p is a softmax: softmax(log p / T) equals softmax(logits / T)."""

    def __init__(self, temperature=4.0, weight=0.5, label_smoothing=0.0, name="distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature, self.weight, self.label_smoothing = float(temperature), float(weight), float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        log_p = ops.log(ops.clip(ops.cast(y_pred[..., :NUM_CLASSES], "float32"), 1e-7, 1.0))
        labels = ops.cast(y_true[..., :NUM_CLASSES], "float32")
        if self.label_smoothing:
            labels = labels * (1.0 - self.label_smoothing) + self.label_smoothing / NUM_CLASSES
        ce = -ops.sum(labels * log_p, axis=-1)
        if y_true.shape[-1] == NUM_CLASSES:
            return ce
        if y_pred.shape[-1] > NUM_CLASSES:  # online: the teachers' probabilities, softened here
            log_t = ops.log(ops.clip(ops.cast(y_pred[..., NUM_CLASSES:], "float32"), 1e-7, 1.0))
            teacher = ops.stop_gradient(ops.softmax(log_t / self.temperature, axis=-1))
        else:
            teacher = ops.cast(y_true[..., NUM_CLASSES:], "float32")
        student_t = ops.log_softmax(log_p / self.temperature, axis=-1)
        kl = ops.sum(teacher * (ops.log(ops.clip(teacher, 1e-7, 1.0)) - student_t), axis=-1)
        kd = kl * self.temperature ** 2
        return (1.0 - self.weight) * ce + self.weight * kd

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "weight": self.weight,
                "label_smoothing": self.label_smoothing}


def accuracy(y_true, y_pred):
    """The student's accuracy against the labels: the first 7 columns of a distillation target and
    of an online model's output."""
    return keras.metrics.categorical_accuracy(y_true[..., :NUM_CLASSES], y_pred[..., :NUM_CLASSES])
