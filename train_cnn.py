#!/usr/bin/env python
"""Train a CNN on FER2013 and save a run folder (best weights, run.json, history.csv).

    python train_cnn.py train.csv.gz                         # cnn3, the report's best network
    python train_cnn.py train.csv.gz --model cnn1 --epochs 20 --val public_test.csv.gz
    python train_cnn.py train.csv.gz --model cnn3 --no-batchnorm      # the report's BN experiment
    python train_cnn.py train.csv.gz --out runs/x --resume            # continue an interrupted run
"""
import sys

from ferkit.train import config as train_cli  # no TensorFlow: --help and bad options answer at once


def main(argv=None):
    return train_cli.main(argv, prog="train_cnn.py", description=__doc__.split("\n\n")[0], model="cnn3",
                          model_args=_model_args, options_from_args=_options)


def _model_args(group):
    group.add_argument("--no-batchnorm", dest="batchnorm", action="store_false",
                       help="build the network without its BatchNormalization layers (report models)")


def _options(args):
    return {} if args.batchnorm else {"batchnorm": False}


if __name__ == "__main__":
    sys.exit(main())
