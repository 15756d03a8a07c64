"""Named training recipes (configs/*.toml): loading, overrides, the product options, and what a run records."""
import dataclasses
import json

import pytest

from core.base.errors import TimbreError
from core.training.config import (
    HISTORY_DIR,
    TrainConfig,
    TrainOptions,
    apply_options,
    load_recipe,
    offered_recipes,
    parse_settings,
    recipe_names,
    recipe_path,
)

HISTORICAL = ("old-default", "previous-default", "previous-default-passages", "previous-no-distillation")


def test_the_default_recipe_is_exactly_the_config_defaults():
    assert load_recipe("default") == TrainConfig()
    assert load_recipe() == TrainConfig()


def test_every_recipe_loads_and_names_the_figure_it_reproduces():
    names = recipe_names()
    assert {"default", "no-distillation", "previous-default", "old-default"} <= set(names)
    for name in names:
        cfg = load_recipe(name)
        assert cfg.recipe == name
        comment = [line for line in recipe_path(name).read_text().splitlines() if line.startswith("#")]
        assert any("README" in line or "docs/experiments.md" in line for line in comment), name
    recipes = [load_recipe(n) for n in names]
    values = [json.dumps({**dataclasses.asdict(c), "recipe": None}, sort_keys=True) for c in recipes]
    assert len(set(values)) == len(values), "two recipes with the same values"


def test_the_documented_recipes_have_the_readme_settings():
    previous = load_recipe("previous-default")
    assert (previous.distill, previous.lowpass_prob, previous.match_dim, previous.passage_hop_seconds) == (0.5, 0.5, 0, 0.0)
    old = load_recipe("old-default")
    assert (old.epochs, old.distill, old.lowpass_prob, old.level_norm) == (400, 0.0, 0.0, False)
    assert old.noise_snr_db == (5.0, 35.0)  # tuples, as the code builds them
    assert load_recipe("no-distillation") == dataclasses.replace(TrainConfig(), recipe="no-distillation", distill=0.0)


def test_overrides_are_parsed_by_the_fields_type():
    cfg = load_recipe("default", parse_settings(["lr=0.001", "widths=8,16", "level-norm=false", "noise_snr_db=[3, 9]",
                                                 "teacher_layer=taggram", "precision=float32"]))
    assert (cfg.lr, cfg.widths, cfg.level_norm, cfg.noise_snr_db) == (0.001, (8, 16), False, (3.0, 9.0))
    assert (cfg.teacher_layer, cfg.precision, cfg.recipe) == ("taggram", "float32", "default")
    assert load_recipe("old-default", {"epochs": 3}).epochs == 3  # typed values too (the jobs pass them)


@pytest.mark.parametrize("pairs, message", [
    (["epochz=3"], "unknown training setting 'epochz'"),
    (["lr=fast"], "training setting 'lr': 'fast'"),
    (["epochs=2.5"], "training setting 'epochs'"),
    (["level_norm=maybe"], "training setting 'level_norm'"),
    (["precision=float16"], "training setting 'precision'"),
    (["epochs=0"], "epochs must be at least 1"),
    (["recipe=old-default"], "'recipe' is not a setting"),
    (["lr"], "write key=value"),
])
def test_bad_overrides_are_refused_naming_the_key(pairs, message):
    with pytest.raises(TimbreError, match=message):
        load_recipe("default", parse_settings(pairs))


def test_an_unknown_recipe_lists_the_offered_ones_and_no_historical_one():
    with pytest.raises(TimbreError, match="no training recipe 'nope': choose one of default, distill") as error:
        load_recipe("nope")
    assert not [name for name in HISTORICAL if name in str(error.value)]


def test_historical_recipes_are_offered_nowhere_but_load_by_name():
    """The earlier defaults (configs/history/) leave --help and the offered list; --recipe NAME still loads each,
    the run records its name, and the experiment log's commands that name them still resolve."""
    assert sorted(p.stem for p in HISTORY_DIR.glob("*.toml")) == sorted(HISTORICAL)
    assert not set(HISTORICAL) & set(offered_recipes()) and set(HISTORICAL) <= set(recipe_names())
    assert {"default", "no-distillation", "mix-all"} <= set(offered_recipes())
    for name in HISTORICAL:
        assert load_recipe(name).recipe == name
    assert load_recipe("old-default", parse_settings(["epochs=250", "lowpass_prob=0.5"])).epochs == 250  # the log's row


def test_the_train_help_offers_no_historical_recipe():
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "-m", "core", "train", "--help"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=60, env={"COLUMNS": "400", **__import__("os").environ})
    assert done.returncode == 0 and "no-distillation" in done.stdout and "mix-all" in done.stdout
    assert not [name for name in HISTORICAL if name in done.stdout]


def test_a_recipe_file_of_ones_own(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("# mine\nepochs = 5\nlowpass_hz = [1000.0, 4000.0]\n")
    cfg = load_recipe(str(path))
    assert (cfg.recipe, cfg.epochs, cfg.lowpass_hz) == ("mine", 5, (1000.0, 4000.0))
    path.write_text("epochs = [oops\n")
    with pytest.raises(TimbreError, match="mine.toml"):
        load_recipe(str(path))


def test_product_options_replace_only_what_was_given():
    old = load_recipe("old-default")
    assert apply_options(old, TrainOptions()) == old
    cfg = apply_options(old, TrainOptions(epochs=7, seed=2, threads=1))
    assert (cfg.epochs, cfg.seed, cfg.threads, cfg.level_norm, cfg.recipe) == (7, 2, 1, False, "old-default")
    assert apply_options(TrainConfig(), TrainOptions(distillation=False)).distill == 0.0
    assert apply_options(load_recipe("previous-default"), TrainOptions(distillation=True)).distill == 0.5  # the recipe's
    assert apply_options(old, TrainOptions(distillation=True)).distill == 1.0  # a recipe without: the default weight
    with pytest.raises(TimbreError, match="batch_size must be at least 2"):
        apply_options(old, TrainOptions(batch_size=1))


def test_the_train_command_resolves_recipe_set_and_options(monkeypatch, capsys):
    from core import cli
    from core.runs import build

    seen = {}

    def fake_train_run(dataset, *, cfg, progress, stage):
        seen.update(dataset=dataset, cfg=cfg)
        raise TimbreError("stop here")

    monkeypatch.setattr(build, "train_run", fake_train_run)
    code = cli.main(["train", "--dataset", "d", "--recipe", "previous-default", "--set", "mix_prob=0.5",
                     "--epochs", "9", "--no-distillation"])
    assert code == 2 and "stop here" in capsys.readouterr().err
    expected = dataclasses.replace(load_recipe("previous-default"), mix_prob=0.5, epochs=9, distill=0.0)
    assert seen == {"dataset": "d", "cfg": expected}
    assert cli.main(["train", "--dataset", "d", "--set", "widths=8,x"]) == 2
    assert "training setting 'widths'" in capsys.readouterr().err


def test_jobs_take_a_recipe_name():
    from core.jobs.start import check_train as _check_train

    train = _check_train({"recipe": "old-default", "epochs": 2})
    assert train == dataclasses.asdict(dataclasses.replace(load_recipe("old-default"), epochs=2))
    assert _check_train({"epochs": 3})["recipe"] == "default"
    with pytest.raises(TimbreError, match="no training recipe"):
        _check_train({"recipe": "nope"})


def test_a_run_records_its_recipe_and_every_value_and_old_runs_still_compare(tiny_run_id):
    from core.base.io import atomic_write_json
    from core.runs.folder import config_differences, load_run, run_summary
    from tests.run_copies import copy_run

    config = load_run(tiny_run_id).config
    assert config["train"]["recipe"] == "default"
    assert set(config["train"]) == {f.name for f in dataclasses.fields(TrainConfig)}
    # a run made before recipes: no recipe, and the settings since removed (distill_mode, segment_seconds)
    old_id = copy_run(tiny_run_id, "tiny-before-recipes")
    old = load_run(old_id).config
    train = {k: v for k, v in old["train"].items() if k != "recipe"} | {"distill_mode": "regress", "segment_seconds": 0.0}
    atomic_write_json(load_run(old_id).path / "config.json", {**old, "train": train})
    assert load_run(old_id).config["train"]["distill_mode"] == "regress" and run_summary(old_id)["broken"] is None
    diff = config_differences([tiny_run_id, old_id])
    assert set(diff.index) == {"train.recipe", "train.distill_mode", "train.segment_seconds"}
    assert diff.loc["train.recipe", tiny_run_id] == "default"
