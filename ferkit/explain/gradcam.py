"""Grad-CAM (Selvaraju et al. 2017) at any feature-map layer, and the maps of negative evidence
that stand in where a face has no positive evidence at that layer (an all-zero Grad-CAM)."""
import numpy as np

from data import IMAGE_SIZE
from ferkit.explain.core import (_as_batch, _as_classes, _call, _grad, _logits_layer, _numpy, _onehot,
                                 get_map_layer, gradcam_layer, keras, ops)


def _split_at(model, layer):
    """(head, tail): head maps the image to `layer`'s output; tail maps [image, that output] to
    the class scores. The image stays an input of the tail for the paths that go around the
    layer (a residual shortcut), so any layer works, not only one that cuts the graph."""
    head = keras.Model(model.input, layer.output)
    tail = keras.Model([model.input, layer.output], _logits_layer(model).output)
    return head, tail


def gradcam(model, images, classes, layer=None, batch_size=64, upsample=True, sign=1.0):
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k w_k A_k), w_k the spatial mean of
    d score_c / d A_k, at `layer`, resized to 48x48 (bilinear).

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class index (0..6) each map explains, one per image or one for all.
        layer: name of the feature-map layer (None: gradcam_layer(model)).
        batch_size: images per gradient call.
        upsample: resize the maps to 48x48; False keeps the layer's (h, w).
        sign: -1 maps the evidence against the class instead (negative_gradcam).

    Returns float32 maps (N, 48, 48) or (N, h, w), >= 0."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    target = get_map_layer(model, layer or gradcam_layer(model))
    head, tail = _split_at(model, target)
    cams = []
    for i in range(0, len(x), batch_size):
        xt = ops.convert_to_tensor(x[i:i + batch_size])
        onehot = _onehot(c[i:i + batch_size])
        acts = _numpy(_call(head, xt))

        def score(a, xt=xt, onehot=onehot):
            return ops.sum(ops.multiply(ops.cast(_call(tail, [xt, a]), "float32"), onehot))

        _, g = _grad(score, acts)
        weights = g.mean(axis=(1, 2), keepdims=True)
        cams.append(np.maximum(sign * (weights * acts).sum(axis=-1), 0.0))
    cam = np.concatenate(cams) if cams else np.zeros((0,) + x.shape[1:3], np.float32)
    if upsample and cam.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        cam = ops.convert_to_numpy(ops.image.resize(cam[..., None], (IMAGE_SIZE, IMAGE_SIZE),
                                                    interpolation="bilinear"))[..., 0]
        cam = np.maximum(cam, 0.0)
    return cam.astype(np.float32)




def negative_gradcam(model, images, classes, layer=None, batch_size=64):
    """Grad-CAM of the evidence against the class: Grad-CAM of the negated score, i.e.
    ReLU(-sum_k w_k A_k). Where a face has no positive evidence at a layer (an all-zero Grad-CAM),
    this is what the layer does hold.

    Args: as gradcam()."""
    return gradcam(model, images, classes, layer=layer, batch_size=batch_size, sign=-1.0)


def fill_empty(model, images, classes, maps, layer=None):
    """Where a Grad-CAM map is all zero, the negative evidence instead (negative_gradcam), so a
    panel shows what the layer holds; also the mask of the faces so replaced, to say so.

    Args:
        model, images, classes, layer: as given to gradcam().
        maps: gradcam()'s maps for them, (N, 48, 48).

    Returns (maps with the empty ones replaced, bool (N,) mask of the replaced ones)."""
    maps = np.array(maps, np.float32, copy=True)
    empty = maps.reshape(len(maps), -1).max(axis=1) <= 0
    if empty.any():
        x = _as_batch(images)
        c = _as_classes(classes, len(x))
        maps[empty] = negative_gradcam(model, x[empty], c[empty], layer=layer)
    return maps, empty
