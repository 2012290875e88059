"""data.mixing.MixedBatches: MixUp and CutMix mix pixels and labels by the same weight, reshuffle
each epoch, repeat themselves for a seed, and train through train_cnn.py --mixup/--cutmix."""
import pytest
import numpy as np

import train_cnn
from data.mixing import MixedBatches


def one_hot_faces(n=40):
    """Face i is filled with the value i, so a pixel tells which faces went into it."""
    images = np.repeat(np.arange(n, dtype=np.uint8), 48 * 48).reshape(n, 48, 48, 1)
    labels = np.eye(7, dtype=np.float32)[np.arange(n) % 7]
    return images, labels


def test_without_mixing_batches_are_a_shuffle_of_the_data():
    images, labels = one_hot_faces()
    batches = MixedBatches(images, labels, batch_size=16)
    assert len(batches) == 3  # 16 + 16 + 8
    seen = np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(len(batches))])
    assert sorted(seen) == list(range(40)) and list(seen) != list(range(40))
    x, y = batches[0]
    np.testing.assert_array_equal(y, labels[x[:, 0, 0, 0].astype(int)])


def test_mixup_blends_pixels_and_labels_by_one_lambda():
    images, labels = one_hot_faces(7)  # face c is flat with value c and has class c
    x, y = MixedBatches(images, labels, batch_size=7, mixup=1.0, seed=3)[0]
    assert x.dtype == np.float32 and x.shape == (7, 48, 48, 1)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert (y.max(axis=1) < 0.99).any()  # with alpha 1 the faces are really mixed
    assert (np.count_nonzero(y, axis=1) <= 2).all()
    # lam * face a + (1 - lam) * face b has the value lam * a + (1 - lam) * b everywhere
    np.testing.assert_allclose(x[:, 0, 0, 0], y @ np.arange(7), atol=1e-4)
    assert np.ptp(x, axis=(1, 2, 3)).max() < 1e-4


def test_cutmix_weights_labels_by_the_pasted_area():
    images, labels = one_hot_faces(7)
    x, y = MixedBatches(images, labels, batch_size=7, cutmix=1.0, seed=5)[0]
    assert (y.max(axis=1) < 0.99).any()
    for face, label in zip(x[:, :, :, 0], y):
        values, counts = np.unique(face, return_counts=True)
        expected = np.zeros(7)
        expected[values.astype(int)] = counts / face.size
        np.testing.assert_allclose(label, expected, atol=1e-6)


def test_same_seed_same_batches_and_epochs_differ():
    images, labels = one_hot_faces()
    a = MixedBatches(images, labels, batch_size=16, mixup=0.4, cutmix=1.0, seed=7)
    b = MixedBatches(images, labels, batch_size=16, mixup=0.4, cutmix=1.0, seed=7)
    np.testing.assert_array_equal(a[1][0], b[1][0])
    first = a[1][0].copy()
    a.on_epoch_end()
    assert not np.array_equal(a[1][0], first)


@pytest.mark.slow
def test_train_cnn_with_mixup_and_cutmix_learns_the_synthetic_task(synthetic_csvs, tmp_path):
    import json

    out = tmp_path / "mix"
    assert train_cnn.main([str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=8",
                           "--epochs", "6", "--batch-size", "32", "--lr", "3e-3", "--no-augment", "--mixup", "0.2", "--cutmix", "1.0",
                           "--val", str(synthetic_csvs["val"]), "--out", str(out), "--quiet"]) == 0
    info = json.load(open(out / "run.json"))
    assert info["args"]["mixup"] == 0.2 and info["args"]["cutmix"] == 1.0
    assert info["val_accuracy"] > 0.5  # chance is 1/7


def test_negative_alpha_is_one_clear_error(synthetic_csvs, tmp_path, capsys):
    assert train_cnn.main([str(synthetic_csvs["train"]), "--mixup", "-1", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == "error: --mixup -1.0: must be a finite number, at least 0 (0 turns it off)\n"
    assert not (tmp_path / "r").exists()  # refused before anything was built or written
