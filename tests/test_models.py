"""The registry and the report's networks: exact parameter counts, options, shapes."""
import numpy as np
import keras
import pytest

import models
from ferkit.errors import FERError

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


@pytest.mark.slow
@pytest.mark.parametrize("match", ["cnn1", "cnn2", "cnn3"])
def test_dnn_matches_its_cnn_within_5_percent(match):
    dnn = models.build_model("dnn", match=match)
    assert abs(dnn.count_params() / REPORT_PARAMS[match] - 1) < 0.05
    assert {type(layer).__name__ for layer in dnn.layers} <= {"InputLayer", "Rescaling", "Flatten", "Dense",
                                                              "Dropout", "Activation"}


def test_dnn_defaults_to_the_reports_best_cnn():
    assert abs(models.build_model("dnn").count_params() / REPORT_PARAMS["cnn3"] - 1) < 0.05


@pytest.mark.slow
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


def test_standardize_gives_each_face_zero_mean_and_unit_std():
    from models.preprocess import Standardize

    z = np.asarray(Standardize()(np.random.default_rng(0).uniform(50, 90, (3, 48, 48, 1)).astype(np.float32)))
    np.testing.assert_allclose(z.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(1, 2, 3)), 1, atol=1e-3)


def test_preprocessing_is_part_of_the_model_and_adds_no_weights():
    plain = models.build_model("cnn1")
    pre = models.build_model("cnn1", preprocess=models.DEFAULT_PREPROCESS)
    assert pre.count_params() == plain.count_params() == REPORT_PARAMS["cnn1"]
    names = [layer.name for layer in pre.layers]
    assert names.index("scale") < names.index("standardize")
    assert not any("blur" in name for name in names)


def test_a_run_trained_with_the_retired_blur_preprocessing_is_refused_in_one_line(tmp_path):
    # Such a run was a different network (a blur before the first convolution): loading its
    # weights into today's would silently change its answers.
    import json

    from ferkit.runs import load as runs

    run = tmp_path / "old"
    run.mkdir()
    info = {"model": "fernet", "options": {"width": 8},
            "preprocess": {"blur": 1.0, "test_blur": 3.25, "standardize": True}}
    (run / "run.json").write_text(json.dumps(info))
    (run / "best.weights.h5").write_bytes(b"")
    with pytest.raises(FERError, match="older version.*retrain"):
        runs.load_run(str(run))
    # the same keys at zero (runs trained after the fix, before the keys went) still load
    info["preprocess"] = {"blur": 0.0, "test_blur": 0.0, "standardize": True}
    assert runs.build_from_info(info).count_params() == models.build_model("fernet", width=8).count_params()


@pytest.mark.slow
def test_affine_resamplers_agree_and_xla_compiles_the_gathers_or_is_declined():
    # RandomAffine resamples with keras.ops gathers, which XLA compiles, or with Keras' resampler
    # (TensorFlow's kernel, faster outside XLA, no XLA lowering): both must compute the same.
    from models.augment import RandomAffine, affine_resample

    x = keras.ops.convert_to_tensor(np.random.default_rng(4).integers(0, 256, (8, 48, 48, 1)).astype("float32"))
    t = RandomAffine(seed=5).random_transform(8, 48, 48)
    ours = np.asarray(affine_resample(x, t))
    reference = np.asarray(keras.ops.image.affine_transform(x, t, interpolation="bilinear", fill_mode="nearest"))
    np.testing.assert_allclose(ours, reference, atol=0.01)
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    np.testing.assert_allclose(np.asarray(tf.function(affine_resample, jit_compile=True)(x, t)), ours, atol=0.01)
    # With the kernel the layer declines XLA, so compile(jit_compile=True) trains without it instead of failing.
    for resampler in ("kernel", "gather"):
        inputs = keras.Input((48, 48, 1))
        net = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(RandomAffine(resampler=resampler)(inputs)))
        model = keras.Model(inputs, net)
        if resampler == "kernel":
            with pytest.warns(UserWarning, match="Proceeding with `jit_compile=False`"):
                model.compile("adam", "categorical_crossentropy", jit_compile=True)
        else:
            model.compile("adam", "categorical_crossentropy", jit_compile=True)
        assert model.jit_compile is (resampler == "gather")
        model.fit(np.asarray(x), np.eye(7)[np.arange(8) % 7], epochs=1, verbose=0)


def test_our_random_erasing_is_training_only_unlike_keras_random_erasing():
    # Why models/augment.py keeps its own RandomErasing (see its docstring): keras.layers.RandomErasing
    # erases when a model is called without `training`. If this starts failing, Keras changed: reconsider.
    from models.augment import RandomErasing

    x = np.full((64, 48, 48, 1), 128.0, "float32")
    for layer, erases_by_default in ((RandomErasing(1.0, seed=1), False),
                                     (keras.layers.RandomErasing(factor=(1.0, 1.0), seed=1), True)):
        inputs = keras.Input((48, 48, 1))
        model = keras.Model(inputs, layer(inputs))
        assert (not np.array_equal(np.asarray(model(x)), x)) is erases_by_default
        np.testing.assert_array_equal(model.predict(x, verbose=0), x)
        assert not np.array_equal(np.asarray(model(x, training=True)), x)
        assert not layer.weights
    erased = np.asarray(RandomErasing(0.5, seed=2)(np.full((2000, 48, 48, 1), 128.0, "float32"), training=True))
    assert 0.45 < (erased != 128).reshape(2000, -1).any(axis=1).mean() < 0.55  # the rate asked for
