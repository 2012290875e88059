"""The registry and the report's networks: exact parameter counts, options, shapes."""
import numpy as np
import keras
import pytest

import models
from fer.errors import FERError

REPORT_PARAMS = {"cnn1": 2_659_851, "cnn2": 39_782_273, "cnn3": 16_326_603}


@pytest.mark.parametrize("name,params", REPORT_PARAMS.items())
def test_report_models_have_the_published_parameter_counts(name, params):
    assert models.build_model(name).count_params() == params


@pytest.mark.parametrize("name", REPORT_PARAMS)
def test_batchnorm_false_removes_every_batchnorm_layer(name):
    with_bn = models.build_model(name)
    without = models.build_model(name, batchnorm=False)
    kinds = lambda m: [type(layer).__name__ for layer in m.layers]  # noqa: E731
    assert "BatchNormalization" in kinds(with_bn)
    assert "BatchNormalization" not in kinds(without)
    assert kinds(without) == [k for k in kinds(with_bn) if k != "BatchNormalization"]


@pytest.mark.parametrize("match", ["cnn1", "cnn2", "cnn3"])
def test_dnn_matches_its_cnn_within_5_percent(match):
    dnn = models.build_model("dnn", match=match)
    assert abs(dnn.count_params() / REPORT_PARAMS[match] - 1) < 0.05
    assert {type(layer).__name__ for layer in dnn.layers} <= {"InputLayer", "Rescaling", "Flatten", "Dense",
                                                              "Dropout", "Activation"}


def test_dnn_defaults_to_the_reports_best_cnn():
    assert abs(models.build_model("dnn").count_params() / REPORT_PARAMS["cnn3"] - 1) < 0.05


def test_registry_lists_and_builds_every_model_with_7_way_softmax():
    names = models.available()
    assert {"cnn1", "cnn2", "cnn3", "dnn", "fernet"} <= set(names)
    x = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype("float32")
    for name in ["cnn1", "fernet", "dnn"]:
        m = models.build_model(name)
        assert m.input_shape == (None, 48, 48, 1)
        p = np.asarray(m(x, training=False))
        assert p.shape == (2, 7)
        np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
        assert m.layers[-1].name == "probs" and m.get_layer("logits").units == 7


def test_augmentation_changes_images_only_in_training_and_adds_no_weights():
    plain = models.build_model("cnn1")
    aug = models.build_model("cnn1", augment=True)
    assert plain.count_params() == aug.count_params()
    layer = aug.get_layer("augment")
    x = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    moved = np.asarray(layer(x, training=True))
    assert moved.shape == x.shape and not np.allclose(moved, x)
    assert moved.min() >= 0 and moved.max() <= 255


def test_affine_augmentation_with_zero_ranges_is_the_identity():
    from models.augment import RandomAffine

    x = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 1)).astype("float32")
    out = np.asarray(RandomAffine(rotation=0, shift=0, zoom=0, flip=False)(x, training=True))
    np.testing.assert_allclose(out, x, atol=1e-3)


def test_affine_flip_only_mirrors_the_image():
    from models.augment import RandomAffine

    x = np.random.default_rng(2).integers(0, 256, (64, 48, 48, 1)).astype("float32")
    out = np.asarray(RandomAffine(rotation=0, shift=0, zoom=0, flip=True, seed=3)(x, training=True))
    same = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, x)]
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, x)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 10 < sum(mirrored) < 54  # about half


def test_unknown_model_or_option_is_a_clear_error():
    with pytest.raises(FERError, match="unknown model 'vgg99'"):
        models.build_model("vgg99")
    with pytest.raises(FERError, match="has no option batchnorm"):
        models.build_model("dnn", batchnorm=False)


def test_preprocessing_blur_keeps_flat_images_and_removes_fine_detail():
    from models.preprocess import GaussianBlur, Standardize

    flat = np.full((1, 48, 48, 1), 77.0, np.float32)
    np.testing.assert_allclose(np.asarray(GaussianBlur(2.5)(flat)), flat, atol=1e-3)
    checker = (np.indices((48, 48)).sum(axis=0) % 2 * 255.0).astype(np.float32)[None, ..., None]
    blurred = np.asarray(GaussianBlur(2.5)(checker))
    assert blurred.std() < 0.01 * checker.std()  # the finest pattern is gone
    z = np.asarray(Standardize()(np.random.default_rng(0).uniform(50, 90, (3, 48, 48, 1)).astype(np.float32)))
    np.testing.assert_allclose(z.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(1, 2, 3)), 1, atol=1e-3)


def test_preprocessing_is_part_of_the_model_and_adds_no_weights():
    plain = models.build_model("cnn1")
    pre = models.build_model("cnn1", preprocess=models.DEFAULT_PREPROCESS)
    assert pre.count_params() == plain.count_params() == REPORT_PARAMS["cnn1"]
    names = [layer.name for layer in pre.layers]
    assert names.index("scale") < names.index("test_blur") < names.index("blur") < names.index("standardize")


def test_test_blur_acts_at_inference_only_and_survives_saving(tmp_path):
    # The training faces already carry this blur; only sharp inference inputs get it.
    from models.preprocess import GaussianBlur

    layer = GaussianBlur(3.5, inference_only=True)
    checker = (np.indices((48, 48)).sum(axis=0) % 2 * 255.0).astype(np.float32)[None, ..., None]
    np.testing.assert_array_equal(np.asarray(layer(checker, training=True)), checker)
    assert np.asarray(layer(checker, training=False)).std() < 0.01 * checker.std()

    model = models.build_model("cnn1", preprocess={"test_blur": 3.5})
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype(np.float32)
    sub = keras.Model(model.input, model.get_layer("test_blur").output)
    assert np.abs(np.asarray(sub(faces, training=True)) - faces / 255).max() < 1e-6
    assert np.abs(np.asarray(sub(faces, training=False)) - faces / 255).max() > 0.05
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.get_layer("test_blur").inference_only
    np.testing.assert_allclose(np.asarray(again.predict(faces, verbose=0)),
                               np.asarray(model.predict(faces, verbose=0)), atol=1e-5)
