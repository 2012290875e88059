#!/usr/bin/env python
"""What a distillation step costs: the student alone, with cached teacher probabilities, and with
the teachers online (run on every augmented batch; `train_cnn.py --teacher-mode online`).

    python benchmarks/distill_cost.py models/pretrained/ensemble/cpu-strongreg models/pretrained/ensemble/cpu-strongreg-mixcut
    python benchmarks/distill_cost.py TEACHER... --model fernet --option width=32 --steps 40

Each way is one `model.fit` over --steps batches of 64 random faces after an untimed warm-up fit,
compiled as ferkit/train/loop.py compiles it (AdamW, the augmentation layers inside the model).
Prints milliseconds per step, its ratio to the student alone (wall time), and images per
CPU-second (process CPU time: a figure a busy machine distorts less); the cached way's one-off
cost, the teachers' pass over the
training faces, is printed by train_cnn.py itself ("teacher: ... in N s").
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as `python benchmarks/distill_cost.py`: the packages live one level up

from ferkit.backend import configure_tensorflow  # noqa: E402
from ferkit.cli import Parser, non_negative_int, positive_int, run_main  # noqa: E402


def build_parser():
    p = Parser(prog="distill_cost.py", description=__doc__.split("\n\n")[0])
    p.add_argument("teachers", nargs="+", metavar="TEACHER", help="teacher run folders (bundled members work)")
    p.add_argument("--model", default="fernet", help="the student network (default: %(default)s)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="student model option (default for fernet: width=32, the bundled one)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="training batch (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=30, help="timed steps per way (default: %(default)s)")
    p.add_argument("--warmup", type=non_negative_int, default=3, help="untimed steps first (default: %(default)s)")
    return p


def time_fit(model, x, y, batch_size, steps, warmup):
    """(ms per step, images per CPU-second) of model.fit over `steps` batches, after a warm-up fit."""
    if warmup:
        model.fit(x[:warmup * batch_size], y[:warmup * batch_size], batch_size=batch_size, epochs=1, verbose=0,
                  shuffle=False)
    n = steps * batch_size
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(x[:n], y[:n], batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return 1000 * wall / steps, n / cpu


def main(argv=None):
    def run():
        args = build_parser().parse_args(argv)
        configure_tensorflow()
        import numpy as np

        import models
        from ferkit.backend import import_keras
        from ferkit.train import distill
        from ferkit.train.config import parse_options

        keras = import_keras()
        options = parse_options(args.option) or ({"width": 32} if args.model == "fernet" else {})
        teachers = [m for m, _ in distill.load_teachers(args.teachers)]
        rng = np.random.default_rng(0)
        n = (args.steps + args.warmup) * args.batch_size
        x = rng.integers(0, 256, (n, *models.INPUT_SHAPE)).astype(np.float32)
        labels = keras.utils.to_categorical(rng.integers(0, models.NUM_CLASSES, n), models.NUM_CLASSES)
        soft = distill.soften(rng.dirichlet(np.ones(models.NUM_CLASSES), n), 4.0)

        def student():
            keras.utils.set_random_seed(0)
            return models.build_model(args.model, augment={"erasing": 0.25, "seed": 0},
                                      preprocess={"standardize": False}, **options)

        loss = distill.DistillationLoss(4.0, 0.5, 0.1)
        ways = {}
        plain = student()
        plain.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=keras.losses.CategoricalCrossentropy(),
                      metrics=["accuracy"])
        ways["student alone"] = (plain, labels)
        cached = student()
        cached.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=loss, metrics=[distill.accuracy])
        ways["cached teachers"] = (cached, np.concatenate([labels, soft], axis=1))
        online = distill.online_model(student(), teachers)
        online.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=loss, metrics=[distill.accuracy])
        ways[f"online ({len(teachers)} teachers)"] = (online, distill.online_targets(labels))
        print(f"student {args.model} {options}: {plain.count_params():,} parameters; teachers: "
              + ", ".join(f"{os.path.basename(os.path.normpath(t))} ({m.count_params():,})"
                          for t, m in zip(args.teachers, teachers)))
        print(f"{keras.backend.backend()} backend, batch {args.batch_size}, {args.steps} timed steps each")
        base = None
        for name, (model, y) in ways.items():
            ms, per_cpu = time_fit(model, x, y, args.batch_size, args.steps, args.warmup)
            base = base or ms
            print(f"  {name:<24} {ms:7.1f} ms/step  {ms / base:4.2f}x  {per_cpu:7.1f} images per CPU-second")
        return 0

    return run_main(run)


if __name__ == "__main__":
    sys.exit(main())
