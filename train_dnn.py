#!/usr/bin/env python
"""Train the fully connected network of the report's question 2 on FER2013.

Its hidden width is chosen so its parameter count matches a CNN's (within 5%): by default
cnn3, the report's best. Same options and run folder as train_cnn.py.

    python train_dnn.py train.csv.gz --match cnn3
"""
import sys

from ferkit.train import config as train_cli  # no TensorFlow: --help and bad options answer at once


def main(argv=None):
    return train_cli.main(argv, prog="train_dnn.py", description=__doc__.split("\n\n")[0], model="dnn",
                          choose_model=False, model_args=_model_args, options_from_args=_options)


def _model_args(group):
    group.add_argument("--match", choices=["cnn1", "cnn2", "cnn3"], default="cnn3",
                       help="CNN whose parameter count the DNN matches")
    group.add_argument("--depth", type=int, default=3, metavar="N", help="hidden layers")


def _options(args):
    return {"match": args.match, "depth": args.depth}


if __name__ == "__main__":
    sys.exit(main())
