"""Recipes (recipes/*.toml, `--config FILE`): a recipe sets the training parser's defaults, options
on the command line win, run.json records the final settings, and a bad recipe is one line."""
import json
import os
import sys

import pytest

import train_cnn
from ferkit.train.config import build_parser, parse_options
from tests.conftest import ROOT

RECIPES = os.path.join(ROOT, "recipes")
NOT_SETTINGS = ("train_csv", "out", "resume", "config", "quiet")  # where a run is and what it prints, not how it trains


def parse(*argv):
    parser = build_parser("train_cnn.py", "", model_args=train_cnn._model_args)  # train_cnn.py's parser
    return vars(parser.parse_args(["train.csv", *argv]))


def saved_args(run_dir):
    with open(os.path.join(ROOT, run_dir, "run.json")) as f:
        return {k: v for k, v in json.load(f)["args"].items() if k not in NOT_SETTINGS}


@pytest.mark.parametrize("recipe, run_dir", [
    ("long/strongreg-distill.toml", "models/pretrained/fernet"),
    ("fernet-cpu.toml", "docs/accuracy/fernet-2026-11-29"),  # the bundled model until 2026-11-30
    ("long/strongreg.toml", "models/pretrained/ensemble/cpu-strongreg"),
    ("long/strongreg-mixcut.toml", "models/pretrained/ensemble/cpu-strongreg-mixcut"),
    ("gpu-fervgg-adam.toml", "models/pretrained/ensemble/gpu-fervgg-adam"),
    ("gpu-fervgg-sgd.toml", "models/pretrained/ensemble/gpu-fervgg-sgd"),
    ("gpu-fervgg-mixcut.toml", "models/pretrained/ensemble/gpu-fervgg-mixcut"),
    ("gpu-fervgg-mixcut-s6.toml", "models/pretrained/ensemble/gpu-fervgg-mixcut-s6"),
    ("gpu-fervgg-mixcut-s7.toml", "models/pretrained/ensemble/gpu-fervgg-mixcut-s7"),  # the third GPU round
    ("gpu-fervgg-mixcut-s8.toml", "models/pretrained/ensemble/gpu-fervgg-mixcut-s8"),
    ("gpu-fervgg-mixcut-s9.toml", "models/pretrained/ensemble/gpu-fervgg-mixcut-s9"),
    ("gpu-fervgg-mixcut-s10.toml", "models/pretrained/ensemble/gpu-fervgg-mixcut-s10"),
    ("gpu-fervgg-mixcut-sgd.toml", "docs/accuracy/gpu2/gpu-fervgg-mixcut-sgd"),  # the second GPU round
    ("gpu-fernet-w40-distill.toml", "docs/accuracy/gpu2/gpu-fernet-w40-distill"),
    ("gpu-fernet-w32-distill.toml", "docs/accuracy/gpu2/gpu-fernet-w32-distill"),
])
def test_a_bundled_models_recipe_gives_the_settings_it_was_trained_with(recipe, run_dir):
    args, defaults, saved = parse("--config", os.path.join(RECIPES, recipe)), parse(), saved_args(run_dir)
    assert {k: args[k] for k in saved} == saved
    assert {k: v for k, v in args.items() if k not in saved and k not in NOT_SETTINGS} == \
        {k: v for k, v in defaults.items() if k not in saved and k not in NOT_SETTINGS}  # options added since


def test_every_recipe_parses():
    names = sorted(os.path.relpath(os.path.join(d, f), RECIPES) for d, _, files in os.walk(RECIPES) for f in files)
    assert {"fernet-cpu.toml", "gpu-cnn3.toml", os.path.join("ab", "base.toml")} <= set(names)
    for name in names:
        assert parse("--config", os.path.join(RECIPES, name))["config"].endswith(name)


def test_the_command_line_wins_over_the_recipe():
    args = parse("--config", os.path.join(RECIPES, "fernet-cpu.toml"), "--epochs", "5", "--lr", "0.1")
    assert (args["epochs"], args["lr"], args["model"], args["time_budget"]) == (5, 0.1, "fernet", 135)


def test_a_repeatable_option_adds_to_the_recipes_list():
    """argparse appends to a list default: --teacher X on top of a distillation recipe is a fifth
    teacher, not the only one; --help says so, and --option's later KEY wins."""
    args = parse("--config", os.path.join(RECIPES, "long", "strongreg-distill.toml"), "--teacher", "X", "--option", "width=8")
    assert len(args["teacher"]) == 5 and args["teacher"][-1] == "X"
    assert parse_options(args["option"]) == {"width": 8}


@pytest.mark.parametrize("text, message", [
    ("epoch = 3\n", "unknown setting 'epoch'"),
    ("epochs = 2.5\n", "epochs = 2.5: invalid literal"),
    ("optimizer = 'rmsprop'\n", "optimizer = 'rmsprop': choose from"),
    ("augment = 'no'\n", "augment = 'no': expected true or false"),
    ("train_csv = 'a.csv'\n", "unknown setting 'train_csv'"),
    ("epochs = [\n", "not a readable TOML recipe"),
    ("lr = 0\n", "--lr 0.0: must be a finite number above 0"),  # checked as strictly as an option
    ("option = 5\n", "option = 5: expected text in quotes"),  # was an AttributeError deep in parsing
    ("seed = -1\n", "--seed -1: must be a whole number from 0 to 4294967295"),  # was NumPy's error, after data loaded
    ("weight-decay = 0.05\n", "--weight-decay 0.05 with --optimizer adam: Adam has no weight decay"),  # was ignored
])
def test_a_bad_recipe_is_one_line_before_anything_loads(text, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ferkit.train.loop", None)  # importing the training routine would fail
    recipe = tmp_path / "bad.toml"
    recipe.write_text(text)
    assert train_cnn.main([str(tmp_path / "x.csv"), "--config", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_missing_recipe_is_one_line(tmp_path, capsys):
    assert train_cnn.main(["x.csv", "--config", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err == f"error: --config {tmp_path / 'none.toml'}: no such file\n"


@pytest.mark.slow
def test_run_json_records_the_recipes_settings(tmp_path):
    from tests.conftest import synthetic

    x, y = synthetic.make_faces(112, seed=1)
    train = str(synthetic.write_csv(tmp_path / "train.csv", x, y))
    recipe = tmp_path / "tiny.toml"
    recipe.write_text('model = "fernet"\noption = ["width=4"]\nepochs = 1\nbatch-size = 32\nlr = 2e-3\n'
                      'no-augment = true\nquiet = true\n')
    out = tmp_path / "run"
    assert train_cnn.main([train, "--config", str(recipe), "--out", str(out), "--batch-size", "16"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["options"] == {"width": 4} and info["epochs_done"] == 1
    a = info["args"]
    assert (a["model"], a["option"], a["epochs"], a["batch_size"], a["lr"], a["augment"], a["config"]) == \
        ("fernet", ["width=4"], 1, 16, 0.002, False, str(recipe))
