"""train_cnn.py --teacher: the distillation loss, the cached teacher probabilities, a tiny
teacher -> student run on the synthetic task, and one-line refusals of unusable teachers."""
import json
import shutil

import numpy as np
import pytest

import data
import train_cnn
from ferkit.backend import import_keras
from ferkit.train import distill

keras = import_keras()


def _ce(labels, p):
    return -(labels * np.log(p)).sum(axis=1)


def test_loss_is_cross_entropy_on_labels_alone_and_adds_the_teacher_term():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7), size=5).astype(np.float32)
    labels = np.eye(7, dtype=np.float32)[[0, 1, 2, 3, 4]]
    teacher = distill.soften(rng.dirichlet(np.ones(7), size=5), 4.0)
    loss = distill.DistillationLoss(temperature=4.0, weight=0.5)
    ce = _ce(labels, p)
    # Validation targets have 7 columns: plain cross-entropy, comparable with any other run.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss.call(labels, p)), ce, rtol=1e-5)
    both = np.concatenate([labels, teacher], axis=1)
    student_t = distill.soften(p, 4.0)
    kl = (teacher * (np.log(teacher) - np.log(student_t))).sum(axis=1)
    expected = 0.5 * ce + 0.5 * 16.0 * kl
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss.call(both, p)), expected, rtol=1e-4)
    # A student that already matches its teacher pays only for the labels.
    same = np.concatenate([labels, distill.soften(p, 4.0)], axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss.call(same, p)), 0.5 * ce, rtol=1e-4)


def test_soften_keeps_the_order_and_flattens():
    p = np.array([[0.7, 0.2, 0.1, 0, 0, 0, 0]], np.float32)
    soft = distill.soften(p, 4.0)
    np.testing.assert_allclose(soft.sum(), 1.0, rtol=1e-6)
    assert soft[0, 0] > soft[0, 1] > soft[0, 2] and soft[0, 0] < 0.7
    np.testing.assert_allclose(distill.soften(p, 1.0), p, atol=1e-6)


@pytest.mark.slow
def test_student_learns_from_a_tiny_teacher_and_caches_its_probabilities(synthetic_csvs, trained_run, tmp_path):
    out = tmp_path / "student"
    args = [str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=8", "--epochs", "4",
            "--batch-size", "16", "--lr", "3e-3", "--no-augment", "--teacher", str(trained_run),
            "--distill-weight", "1", "--distill-temperature", "2", "--out", str(out), "--quiet"]
    assert train_cnn.main(args) == 0
    info = json.load(open(out / "run.json"))
    assert info["args"]["teacher"] == [str(trained_run)] and info["args"]["distill_weight"] == 1
    # With weight 1 the labels play no part in the loss: the student learns the task from the
    # teacher's probabilities alone (chance is 1/7).
    assert info["val_accuracy"] > 0.5
    cached = np.load(out / distill.TEACHER_FILE)
    assert cached.shape == (info["train_rows"], 7)
    # The cache holds the teacher's own probabilities on the (unaugmented) training faces.
    train = data.load_csv(str(synthetic_csvs["train"]))
    tr, _ = data.stratified_split(train.labels, 0.1, seed=1337)
    expected = distill.teacher_probs([str(trained_run)], train.images[tr])
    np.testing.assert_allclose(cached, expected, atol=1e-5)
    # --resume reads the cache instead of asking the teacher again.
    (out / distill.TEACHER_FILE).write_bytes(b"damaged")
    info["status"] = "interrupted"
    json.dump(info, open(out / "run.json", "w"))
    assert train_cnn.main([str(synthetic_csvs["train"]), "--out", str(out), "--resume", "--quiet"]) == 2


def test_a_teacher_with_other_classes_is_refused_in_one_line(synthetic_csvs, trained_run, tmp_path, capsys):
    teacher = tmp_path / "teacher5"
    shutil.copytree(trained_run, teacher)
    info = json.load(open(teacher / "run.json"))
    info["class_names"] = info["class_names"][:5]
    json.dump(info, open(teacher / "run.json", "w"))
    out = tmp_path / "r"
    rc = train_cnn.main([str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=8", "--epochs", "1",
                         "--teacher", str(teacher), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"error: --teacher {teacher}: predicts") and err.count("\n") == 1
    assert "predicts 5 classes" in err and "learns FER2013's 7" in err and not out.exists()


def test_a_missing_teacher_is_refused_before_anything_loads(synthetic_csvs, tmp_path, capsys):
    rc = train_cnn.main([str(synthetic_csvs["train"]), "--teacher", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert rc == 2
    assert capsys.readouterr().err == f"error: --teacher {tmp_path / 'nope'}: no such run folder or weights file\n"


def test_distillation_options_are_checked(synthetic_csvs, tmp_path, capsys):
    rc = train_cnn.main([str(synthetic_csvs["train"]), "--distill-weight", "1.5", "--out", str(tmp_path / "r")])
    assert rc == 2
    assert capsys.readouterr().err == "error: --distill-weight 1.5: must be between 0 and 1\n"


def test_cached_probabilities_serve_as_a_teacher_and_mix_with_a_run(synthetic_csvs, trained_run, tmp_path):
    """A lent GPU has no teachers' weights: the .npy a distilled run cached stands in for them."""
    train = data.load_csv(str(synthetic_csvs["train"]))
    tr, _ = data.stratified_split(train.labels, 0.1, seed=1337)
    images = train.images[tr]
    from_run = distill.teacher_probs([str(trained_run)], images)
    npy = tmp_path / "probs.npy"
    np.save(npy, np.full_like(from_run, 1 / 7))
    np.testing.assert_allclose(distill.teacher_probs([str(npy)], images), 1 / 7, atol=1e-6)
    # A .npy is one teacher beside the run folders, each of which is one too.
    np.testing.assert_allclose(distill.teacher_probs([str(npy), str(trained_run)], images),
                               (from_run + 1 / 7) / 2, atol=1e-5)
    np.testing.assert_allclose(distill.teacher_probs([str(npy), str(trained_run), str(trained_run)], images),
                               (2 * from_run + 1 / 7) / 3, atol=1e-5)


def test_cached_probabilities_for_other_faces_are_refused_in_one_line(synthetic_csvs, tmp_path, capsys):
    npy = tmp_path / "probs.npy"
    np.save(npy, np.full((5, 7), 1 / 7, np.float32))
    out = tmp_path / "r"
    rc = train_cnn.main([str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=8", "--epochs", "1",
                         "--teacher", str(npy), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and not out.exists()
    assert err.startswith(f"error: {npy}: teacher probabilities of shape (5, 7), expected (")
    assert "same training file and held-out split (--val-split, --split-seed or --seed, --train-limit)" in err


def test_online_loss_softens_the_teachers_output_and_validation_stays_plain():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(7), size=5).astype(np.float32)
    teacher = rng.dirichlet(np.ones(7), size=5).astype(np.float32)
    labels = np.eye(7, dtype=np.float32)[[6, 5, 4, 3, 2]]
    loss = distill.DistillationLoss(temperature=2.0, weight=0.25)
    both = np.concatenate([p, teacher], axis=1)  # what online_model outputs
    online = keras.ops.convert_to_numpy(loss.call(distill.online_targets(labels), both))
    # The same value as the cached form, where the target carries the teachers' softened probabilities.
    cached = keras.ops.convert_to_numpy(loss.call(np.concatenate([labels, distill.soften(teacher, 2.0)], 1), p))
    np.testing.assert_allclose(online, cached, rtol=1e-4)
    assert not np.allclose(online, _ce(labels, p), rtol=1e-3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss.call(labels, both)), _ce(labels, p), rtol=1e-5)
    acc = keras.ops.convert_to_numpy(distill.accuracy(distill.online_targets(labels), both))
    np.testing.assert_array_equal(acc, (p.argmax(1) == labels.argmax(1)).astype(np.float32))


def test_online_model_trains_only_the_student_and_keeps_the_teachers_in_inference_mode(trained_run):
    import models

    teacher, _ = distill.load_teachers([str(trained_run)])[0]
    student = models.build_model("fernet", width=8)
    taught = distill.online_model(student, [teacher, teacher])
    assert taught.output_shape == (None, 14)
    assert {id(v) for v in taught.trainable_variables} == {id(v) for v in student.trainable_variables}
    x = np.random.default_rng(0).integers(0, 256, (6, 48, 48, 1)).astype(np.float32)
    # training=True reaches the student (dropout) but not the teachers: their half is their
    # inference-mode answer, the mean of two identical teachers being one teacher's.
    out = keras.ops.convert_to_numpy(taught(x, training=True))
    np.testing.assert_allclose(out[:, 7:], keras.ops.convert_to_numpy(teacher(x, training=False)), atol=1e-5)
    np.testing.assert_allclose(out.sum(axis=1), 2.0, rtol=1e-5)
    # With augmentation, the teachers read the augmented faces (the student's "augment" block).
    augmented = models.build_model("fernet", augment=True, width=8)
    taught = distill.online_model(augmented, [teacher])
    assert taught.get_layer("teachers").input is augmented.get_layer("augment").output


@pytest.mark.slow
def test_student_learns_from_online_teachers_and_keeps_only_its_own_weights(synthetic_csvs, trained_run, tmp_path):
    from ferkit.runs.load import load_run

    out = tmp_path / "online"
    args = [str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=8", "--epochs", "4",
            "--batch-size", "16", "--lr", "3e-3", "--erasing", "0.2", "--mixup", "0.2", "--teacher", str(trained_run),
            "--teacher-mode", "online", "--distill-weight", "1", "--distill-temperature", "2",
            "--out", str(out), "--quiet"]
    assert train_cnn.main(args) == 0
    info = json.load(open(out / "run.json"))
    assert info["args"]["teacher_mode"] == "online" and not (out / distill.TEACHER_FILE).exists()
    # Labels play no part (weight 1): the student learned the task from the teachers' answers on
    # its augmented, mixed faces alone (chance is 1/7).
    assert info["val_accuracy"] > 0.5
    student, _ = load_run(str(out))  # the student alone: its own architecture, no teachers inside
    assert student.output_shape == (None, 7) and info["params"] == student.count_params()


@pytest.mark.parametrize("extra, message", [
    (["--teacher-mode", "online"], "error: --teacher-mode online: no --teacher given\n"),
    (["--teacher-mode", "online", "--teacher", "{npy}"],
     "error: --teacher {npy}: --teacher-mode online runs the teachers on every batch, so it needs their run "
     "folders, not cached probabilities\n"),
    (["--teacher-mode", "online", "--teacher", "{run}", "--teacher-tta"],
     "error: --teacher-tta with --teacher-mode online: online teachers answer on the augmented faces themselves; "
     "TTA applies to cached probabilities\n"),
])
def test_online_teachers_are_refused_in_one_line_when_unusable(synthetic_csvs, trained_run, tmp_path, capsys,
                                                               extra, message):
    npy = tmp_path / "probs.npy"
    np.save(npy, np.full((5, 7), 1 / 7, np.float32))
    fill = {"npy": str(npy), "run": str(trained_run)}
    extra = [a.format(**fill) for a in extra]
    rc = train_cnn.main([str(synthetic_csvs["train"]), *extra, "--out", str(tmp_path / "r")])
    assert rc == 2 and capsys.readouterr().err == message.format(**fill)
    assert not (tmp_path / "r").exists()
