"""Training batches mixed across faces: MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019).

    batches = MixedBatches(ds.images, onehot_labels, batch_size=64, mixup=0.2, seed=1337)
    model.fit(batches, epochs=..., validation_data=(x_val, y_val))

The two mix the labels as well as the pixels, so they cannot live inside the model with the
other augmentation layers (models/augment.py): they sit in the input pipeline, as a Keras
PyDataset of numpy batches that every backend reads alike. Each batch draws one lambda from
Beta(alpha, alpha) and pairs every face with another face of the same batch (timm's recipe).
MixUp blends whole faces; CutMix pastes a box of the partner face and weights the labels by the
area it covers. With both on, each batch takes one of the two at random.
"""
import math

import numpy as np

from ferkit.backend import import_keras

keras = import_keras()


class MixedBatches(keras.utils.PyDataset):
    def __init__(self, images, labels, batch_size, mixup=0.0, cutmix=0.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if mixup < 0 or cutmix < 0:
            raise ValueError("mixup and cutmix alphas must be at least 0")
        self.images, self.labels = images, np.asarray(labels, np.float32)
        self.batch_size, self.seed = batch_size, seed
        self._alphas = {kind: alpha for kind, alpha in (("mixup", mixup), ("cutmix", cutmix)) if alpha > 0}
        self.epoch = 0
        self._order = self._shuffle()

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        # A generator per (seed, epoch, batch): the same batch comes out whatever order Keras asks.
        rng = np.random.default_rng([self.seed, self.epoch, index])
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.images[idx].astype(np.float32)
        y = self.labels[idx]
        if not self._alphas or len(idx) < 2:
            return x, y
        kind = list(self._alphas)[rng.integers(len(self._alphas))]
        partner = rng.permutation(len(idx))
        lam = rng.beta(self._alphas[kind], self._alphas[kind])
        if kind == "mixup":
            x = lam * x + (1 - lam) * x[partner]
        else:
            (top, bottom), (left, right) = _box(rng, lam, x.shape[1:3])
            x[:, top:bottom, left:right] = x[partner, top:bottom, left:right]
            lam = 1 - (bottom - top) * (right - left) / (x.shape[1] * x.shape[2])  # the area actually pasted
        return x, lam * y + (1 - lam) * y[partner]

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch):
        """Serve epoch `epoch` (from 0): its order and mixing depend on (seed, epoch) alone, so a
        resumed run (ferkit/train/loop.py calls this at every epoch start) gets an uninterrupted run's batches."""
        self.epoch = epoch
        self._order = self._shuffle()

    def _shuffle(self):
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))


def _box(rng, lam, shape):
    """A box covering about 1 - lam of the image, centred anywhere, clipped at the border."""
    h, w = shape
    cut = math.sqrt(1 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = rng.integers(h), rng.integers(w)
    return ((max(cy - ch // 2, 0), min(cy + ch // 2, h)), (max(cx - cw // 2, 0), min(cx + cw // 2, w)))
