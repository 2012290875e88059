"""ferkit.infer.predict_proba takes what a Python user hands it (floats in 0..1, one (48, 48)
face, RGB, other sizes) or says in one line what it expects. An untrained tiny model suffices:
the same input must give the same probabilities however it is spelled."""
import numpy as np
import pytest

import models
from data import synthetic
from ferkit.errors import FERError
from ferkit.infer import as_model_input, predict_batches, predict_proba


@pytest.fixture(scope="module")
def model():
    return models.build_model("fernet", width=8)


@pytest.fixture(scope="module")
def faces():
    return synthetic.make_faces(6, seed=3)[0]  # uint8 (6, 48, 48, 1)


def test_model_input_passes_through_without_a_copy(faces):
    assert as_model_input(faces) is faces


@pytest.mark.slow
def test_floats_in_0_1_give_the_probabilities_of_0_255_pixels(model, faces):
    reference = predict_proba(model, faces)
    np.testing.assert_allclose(predict_proba(model, faces / 255.0), reference, atol=1e-6)
    np.testing.assert_allclose(predict_proba(model, faces.astype(np.float32) / 255), reference, atol=1e-6)
    np.testing.assert_allclose(predict_proba(model, faces.astype(np.float64)), reference, atol=1e-6)


@pytest.mark.slow
def test_one_face_and_a_batch_without_channel_axis(model, faces):
    reference = predict_proba(model, faces)
    np.testing.assert_allclose(predict_proba(model, faces[0, :, :, 0]), reference[:1], atol=1e-6)
    np.testing.assert_allclose(predict_proba(model, faces[..., 0]), reference, atol=1e-6)
    np.testing.assert_allclose(predict_proba(model, faces[0]), reference[:1], atol=1e-6)


def test_rgb_and_rgba_are_converted_with_bt601_luma(model, faces):
    gray = faces[..., 0]
    rgb = np.stack([gray] * 3, axis=-1)  # a gray face as RGB: its luma is the same face
    np.testing.assert_allclose(predict_proba(model, rgb), predict_proba(model, faces), atol=1e-6)
    rgba = np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], axis=-1)
    np.testing.assert_array_equal(as_model_input(rgba), faces)
    pure = np.zeros((48, 48, 3), np.uint8)
    pure[..., 1] = 200  # pure green: 0.587 * 200
    assert as_model_input(pure)[0, 0, 0, 0] == round(0.587 * 200)


def test_other_sizes_are_resized_to_48(model, faces):
    # Antialiased bilinear (keras.ops.image.resize, every backend): a constant stays exact and a
    # linear ramp stays the ramp, 2x2 block means away from the borders.
    assert (as_model_input(np.full((96, 96), 123, np.uint8)) == 123).all()
    ramp = np.tile(np.arange(96, dtype=np.float32) * 2.5, (96, 1))  # 0..237.5 left to right
    x = as_model_input(ramp)
    assert x.shape == (1, 48, 48, 1) and x.dtype == np.uint8
    block_means = ramp.reshape(48, 2, 48, 2).mean(axis=(1, 3))
    assert np.abs(x[0, :, 2:-2, 0] - block_means[:, 2:-2]).max() <= 1
    big = np.repeat(np.repeat(faces, 2, axis=1), 2, axis=2)  # 96x96 faces
    assert predict_proba(model, big).shape == (6, 7)
    assert as_model_input(np.zeros((512, 512, 3), np.float32)).shape == (1, 48, 48, 1)


@pytest.mark.parametrize("bad, got", [
    (np.zeros(2304, np.uint8), "got shape (2304,)"),
    (np.zeros((2, 48, 48, 2), np.uint8), "got shape (2, 48, 48, 2)"),
    (np.array(["a face"]), "got an array of <U6"),
    (np.full((48, 48), 300.0), "got values 300..300"),
    (np.full((48, 48), -1.0), "got values -1..-1"),
    (np.full((48, 48), np.nan), "got NaN or infinite values"),
])
def test_anything_else_is_one_line_saying_what_is_expected(model, bad, got):
    with pytest.raises(FERError) as e:
        predict_proba(model, bad)
    message = str(e.value)
    assert message.startswith("expected face images: (N, 48, 48, 1), (N, 48, 48) or one (48, 48) array")
    assert message.endswith(got) and "\n" not in message


def test_an_empty_batch_gives_no_rows(model):
    assert predict_proba(model, np.zeros((0, 48, 48, 1), np.uint8)).shape == (0, 7)


def test_batches_match_model_predict_without_its_dataset_pipeline(model, faces, monkeypatch):
    """predict_batches slices the input for predict_on_batch (7 faces in batches of 3: the last
    batch short) and gives model.predict's probabilities; predict_proba never goes through
    model.predict, whose tf.data iterator can stall for seconds when destroyed."""
    x = np.concatenate([faces, faces[:1]])
    reference = np.asarray(model.predict(x, batch_size=4, verbose=0))
    out = predict_batches(model, x, batch_size=3)
    assert out.shape == (7, 7)
    np.testing.assert_allclose(out, reference, atol=1e-5)
    assert predict_batches(model, x[:0]).shape == (0, 7)

    def refuse(*args, **kwargs):
        raise AssertionError("model.predict called")
    monkeypatch.setattr(model, "predict", refuse)
    np.testing.assert_allclose(predict_proba(model, x, batch_size=3), reference, atol=1e-5)
