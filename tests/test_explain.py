"""Explanation methods (ferkit/explain/) on a synthetic task whose class is decided by a known
region (data.synthetic): the maps must put their mass there, and shift averaging must take a
strided network's sampling lattice out of its gradients without moving that mass."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from data import synthetic  # noqa: E402
from ferkit import explain  # noqa: E402
from ferkit.errors import FERError  # noqa: E402


@pytest.fixture(scope="module")
def plain_model():
    """A small conv net (no BatchNorm, non-negative class weights) fitted on the synthetic faces:
    Rescaling, three 3x3 convs with pooling to 12x12, Flatten, `logits`, `probs`."""
    L = keras.layers
    keras.utils.set_random_seed(0)
    inp = keras.Input((48, 48, 1), name="image")
    h = L.Rescaling(1 / 255, name="scale")(inp)
    h = L.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = L.MaxPooling2D(2)(h)
    h = L.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = L.MaxPooling2D(2)(h)
    h = L.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(h)
    h = L.Flatten()(h)
    logits = L.Dense(7, name="logits", kernel_constraint=keras.constraints.NonNeg())(h)
    model = keras.Model(inp, L.Activation("softmax", name="probs")(logits))
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    x, y = synthetic.make_faces(700, seed=1)
    model.fit(x, keras.utils.to_categorical(y, 7), batch_size=32, epochs=3, verbose=0)
    return model


@pytest.fixture(scope="module")
def faces():
    x, y = synthetic.make_faces(21, seed=5)
    masks = np.stack([synthetic.patch_mask(c) for c in y])
    return x, y, masks


def _inside_ratio(maps, masks):
    """Per image: (share of the map's mass inside the patch) / (the patch's share of the area)."""
    inside = (maps * masks).sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-12)
    return inside / masks.mean(axis=(1, 2))


def test_model_learned_the_task(plain_model, faces):
    x, y, _ = faces
    assert (plain_model.predict(x, verbose=0).argmax(1) == y).mean() >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("method, kwargs", [("vanilla", {}), ("smoothgrad", {"samples": 10}), ("ig", {"steps": 20})])
def test_saliency_mass_lies_in_the_class_patch(plain_model, faces, method, kwargs):
    x, y, masks = faces
    maps = explain.explain(plain_model, x, y, method, **kwargs)
    assert maps.shape == (len(x), 48, 48) and maps.dtype == np.float32
    assert (maps >= 0).all() and np.isfinite(maps).all()
    ratio = _inside_ratio(maps, masks)
    assert np.median(ratio) > 2.5, ratio
    assert ratio.min() > 1.5, ratio


def test_gradcam_peaks_in_the_class_patch(plain_model, faces):
    x, y, masks = faces
    assert explain.gradcam_layer(plain_model) == "last_conv"
    cams = explain.gradcam(plain_model, x, y)
    assert cams.shape == (len(x), 48, 48) and (cams >= 0).all()
    assert _inside_ratio(cams, masks).mean() > 1.3
    peaks = cams.reshape(len(x), -1).argmax(axis=1)
    assert masks.reshape(len(x), -1)[np.arange(len(x)), peaks].mean() >= 0.7


def test_integrated_gradients_completeness(plain_model, faces):
    """Attributions sum to score(x) - score(black) (the trapezoid rule makes this near exact)."""
    x, y, _ = faces
    a = explain.integrated_gradients(plain_model, x[:4], y[:4], steps=30, return_attributions=True)
    net = explain.logits_model(plain_model)
    s = keras.ops.convert_to_numpy(net(x[:4].astype("float32"), training=False))[np.arange(4), y[:4]]
    s0 = keras.ops.convert_to_numpy(net(np.zeros((4, 48, 48, 1), "float32"), training=False))[np.arange(4), y[:4]]
    np.testing.assert_allclose(a.sum(axis=(1, 2, 3)), s - s0, rtol=0.05, atol=0.05)


def test_gradients_are_taken_before_the_softmax(plain_model, faces):
    """Vanilla saliency is |d logit / d x|, checked against a finite difference on the logit."""
    x, y, _ = faces
    net = explain.logits_model(plain_model)
    img = x[:1].astype("float32")
    sal = explain.vanilla_saliency(plain_model, img, y[:1])[0]
    r, c = np.unravel_index(np.argmax(sal), sal.shape)
    eps = 1.0
    up, down = img.copy(), img.copy()
    up[0, r, c, 0] += eps
    down[0, r, c, 0] -= eps
    f = lambda v: float(keras.ops.convert_to_numpy(net(v, training=False))[0, y[0]])  # noqa: E731
    assert abs((f(up) - f(down)) / (2 * eps)) == pytest.approx(sal[r, c], rel=0.1)


def test_gradcam_inside_residual_block_matches_a_tape(tmp_path):
    """Grad-CAM at a layer inside a residual block (not a cut of the graph) equals a direct
    GradientTape computation."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("reference computed with tf.GradientTape")
    import tensorflow as tf

    import models

    keras.utils.set_random_seed(1)
    model = models.build_model("fernet", width=4)
    layer = [n for n in explain.conv_layers(model) if model.get_layer(n).output.shape[1] == 12][1]
    x, y = synthetic.make_faces(3, seed=3)
    feat = keras.Model(model.input, [model.get_layer(layer).output, model.get_layer("logits").output])
    with tf.GradientTape() as tape:
        a, logits = feat(x.astype("float32"), training=False)
        score = tf.reduce_sum(logits * tf.one_hot(y, 7))
    g = tape.gradient(score, a).numpy()
    ref = np.maximum((g.mean(axis=(1, 2), keepdims=True) * a.numpy()).sum(-1), 0)
    got = explain.gradcam(model, x, y, layer=layer, upsample=False)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


def test_layer_choice_and_errors(plain_model):
    import models

    fernet = models.build_model("fernet", width=4)
    name = explain.gradcam_layer(fernet)
    assert fernet.get_layer(name).output.shape[1:3] == (6, 6)
    # feature maps by default: the last layer still 24x24 (the end of fernet's first stage)
    maps_layer = explain.default_maps_layer(fernet)
    names = explain.map_layers(fernet)
    assert fernet.get_layer(maps_layer).output.shape[1:3] == (24, 24)
    assert fernet.get_layer(names[names.index(maps_layer) + 1]).output.shape[1] == 12
    with pytest.raises(FERError) as e:
        explain.gradcam(plain_model, np.zeros((1, 48, 48, 1), np.uint8), 0, layer="no_such_layer")
    msg = str(e.value)
    assert "no_such_layer" in msg and "last_conv" in msg and "\n" not in msg
    with pytest.raises(FERError):
        explain.feature_maps(plain_model, "logits", np.zeros((48, 48, 1), np.uint8))  # not a feature map
    dense_only = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                                   keras.layers.Dense(7, name="logits"), keras.layers.Activation("softmax")])
    with pytest.raises(FERError):
        explain.gradcam_layer(dense_only)


@pytest.mark.slow
def test_filter_patterns_raise_the_activation(plain_model):
    pats = explain.filter_patterns(plain_model, "last_conv", filters=4, steps=40, step_size=6.0, seed=0)
    assert pats.images.shape == (4, 48, 48)
    assert list(pats.filters) == [0, 1, 2, 3]
    assert (pats.images >= 0).all() and (pats.images <= 255).all()
    # The grey start already excites these ReLU filters (and pixels are bounded to 0..255), so
    # "a lot" here is: every filter's mean activation at least 1.6 times its start, and far
    # beyond what other noise draws give at the start.
    assert (pats.activation > 1.6 * pats.start_activation).all(), (pats.start_activation, pats.activation)
    other = explain.filter_patterns(plain_model, "last_conv", filters=4, steps=0, seed=1).start_activation
    assert (pats.activation - pats.start_activation > 20 * np.abs(other - pats.start_activation) + 0.2).all()
    tv = explain.filter_patterns(plain_model, "last_conv", filters=[2], steps=10, penalty="tv")
    assert tv.activation[0] > tv.start_activation[0]
    with pytest.raises(FERError):
        explain.filter_patterns(plain_model, "last_conv", filters=[99], steps=1)


def test_feature_maps(plain_model, faces):
    x, _, _ = faces
    maps = explain.feature_maps(plain_model, "last_conv", x[0])
    assert maps.shape == (12, 12, 16) and (maps >= 0).all()


# ---------------------------------------------------------------- shift averaging (the lattice)


@pytest.fixture(scope="module")
def strided_model():
    """A small net that downsamples like fernet (max-pool, then 'same' stride-2 convolutions
    down to 3x3: a total stride of 16), fitted on the synthetic faces; no BatchNorm, so it is
    exact in inference mode after a few epochs."""
    L = keras.layers
    keras.utils.set_random_seed(0)
    inp = keras.Input((48, 48, 1), name="image")
    h = L.Rescaling(1 / 255)(inp)
    h = L.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = L.MaxPooling2D(2)(h)
    for i in range(3):
        h = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name=f"down{i}")(h)
    logits = L.Dense(7, name="logits", kernel_constraint=keras.constraints.NonNeg())(L.Flatten()(h))
    model = keras.Model(inp, L.Activation("softmax", name="probs")(logits))
    model.compile(keras.optimizers.Adam(2e-3), "categorical_crossentropy", metrics=["accuracy"])
    x, y = synthetic.make_faces(700, seed=1)
    model.fit(x, keras.utils.to_categorical(y, 7), batch_size=32, epochs=3, verbose=0)
    return model


def _lattice(maps, masks, period=16):
    """How much the maps vary with the pixel's position modulo `period` (the network's total
    stride), far from the class patches where the task gives no evidence: the coefficient of
    variation of the mean (per-map normalized) value over the period x period phases."""
    from scipy.ndimage import binary_dilation

    far = np.stack([~binary_dilation(m > 0, iterations=9) for m in masks]).astype(float)
    m = maps / maps.mean(axis=(1, 2), keepdims=True)
    k = 48 // period
    num = (m * far).reshape(-1, k, period, k, period).sum(axis=(0, 1, 3))
    den = far.reshape(-1, k, period, k, period).sum(axis=(0, 1, 3))
    profile = num / np.maximum(den, 1)
    return profile.std() / profile.mean()


@pytest.mark.slow
@pytest.mark.parametrize("method, kwargs", [("vanilla", {"samples": 16}), ("smoothgrad", {"samples": 16}),
                                            ("ig", {"steps": 24})])
def test_shift_averaging_removes_the_stride_lattice_and_keeps_the_evidence(strided_model, faces, method, kwargs):
    x, y, masks = faces
    assert (strided_model.predict(x, verbose=0).argmax(1) == y).mean() >= 0.95
    raw = explain.explain(strided_model, x, y, method, **kwargs)
    averaged = explain.explain(strided_model, x, y, method, jitter=8, **kwargs)
    # The raw gradients of this strided net carry its 16-px sampling grid (measured 0.41 for all
    # three methods); shifts of up to 8 px cover every phase of it and leave about 0.15-0.2.
    assert _lattice(raw, masks) > 0.3, _lattice(raw, masks)
    assert _lattice(averaged, masks) < 0.55 * _lattice(raw, masks), (_lattice(averaged, masks), _lattice(raw, masks))
    ratio = _inside_ratio(averaged, masks)  # the evidence stays in the class patch (raw: median 3.2-5.4)
    assert np.median(ratio) > 1.8 and ratio.min() > 1.3, ratio


def test_shift_and_unshift_put_each_gradient_back_on_its_pixel():
    x = np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48, 1)
    shifted = explain._shift(x, 3, -5)
    assert shifted[0, 10, 10, 0] == x[0, 7, 15, 0]
    assert (shifted[:, :3] == shifted[:, 3:4]).all()  # the top rows repeat the first one in view
    back, seen = explain._unshift(shifted, 3, -5)
    np.testing.assert_array_equal(back[:, :45, 5:], x[:, :45, 5:])  # pixels that stayed in view
    assert seen.sum() == 45 * 43 and (back[:, 45:] == 0).all() and (back[:, :, :5] == 0).all()


def test_dispatch_gives_each_method_only_its_options(plain_model, faces):
    x, y, _ = faces
    options = {"samples": 2, "steps": 3, "jitter": 2, "layer": "last_conv", "seed": 1}
    cols = explain.saliency_columns(plain_model, x[:2], y[:2], list(explain.METHODS), **options)
    assert [t for t, _ in cols] == ["Gradient", "SmoothGrad", "Grad-CAM (last_conv)", "Integrated gradients"]
    assert all(m.shape == (2, 48, 48) for _, m in cols)
    np.testing.assert_allclose(cols[0][1], explain.vanilla_saliency(plain_model, x[:2], y[:2], jitter=2, samples=2,
                                                                    seed=1))
    with pytest.raises(TypeError, match="no explanation method takes sigmaa"):
        explain.explain(plain_model, x[:1], y[:1], "smoothgrad", sigmaa=0.1)
    with pytest.raises(FERError, match="unknown method"):
        explain.explain(plain_model, x[:1], y[:1], "lime")
