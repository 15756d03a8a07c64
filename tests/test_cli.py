import subprocess
import sys

import numpy as np
import pytest

from core.cli import build_parser, main
from core.runs.folder import load_run

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_train_flags_are_the_product_options_plus_recipe_and_set():
    from core.training.config import TrainOptions

    args = build_parser().parse_args(["train", "--dataset", "d", "--epochs", "7", "--recipe", "old-default",
                                      "--set", "lr=0.001", "--set", "widths=8,16", "--no-distillation"])
    assert (args.epochs, args.recipe, args.set, args.distillation) == (7, "old-default", ["lr=0.001", "widths=8,16"], False)
    for field in TrainOptions.__dataclass_fields__:
        assert hasattr(args, field), field
    assert not hasattr(args, "widths") and not hasattr(args, "lowpass_prob")  # research knobs live in recipes
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--dataset", "d", "--widths", "8"])


def test_embed_writes_rows_in_argument_order(tiny_run_id, tmp_path):
    run = load_run(tiny_run_id)
    files = [run.tracks["path"][4], run.tracks["path"][1]]
    assert main(["embed", "--run", tiny_run_id, *files, "--out", str(tmp_path / "x.npy")]) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (2, 128)
    assert np.allclose(x, run.embeddings[[4, 1]], atol=2e-3)


def test_recommend_prints_the_query_track_first(tiny_run_id, capsys):
    run = load_run(tiny_run_id)
    assert main(["recommend", "--run", tiny_run_id, run.tracks["path"][2], "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].split()[0] == "1" and lines[0].split()[1] == "1.0000"
    assert run.tracks["path"][2] in lines[0]


def test_errors_are_one_clear_line_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "bad.wav").write_text("nope")
    assert main(["recommend", "--run", "missing-run", str(tmp_path / "bad.wav")]) == 2
    assert "no run named 'missing-run'" in capsys.readouterr().err
    assert main(["train", "--dataset", "missing"]) == 2


def test_help_of_every_subcommand_renders(capsys):
    import pytest

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "core", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "ingest" in out.stdout and "recommend" in out.stdout


def test_run_given_as_a_folder_path_is_accepted(tiny_run_id, tmp_path, capsys, monkeypatch):
    from core.base.paths import runs_dir

    query = load_run(tiny_run_id).tracks["path"][2]
    monkeypatch.chdir(runs_dir().parent)
    for given in (f"runs/{tiny_run_id}/", f"runs/{tiny_run_id}", str(runs_dir() / tiny_run_id) + "/",
                  f"./runs/{tiny_run_id}", f"{tiny_run_id}/"):
        assert main(["recommend", "--run", given, query, "-k", "2"]) == 0, given
        out = capsys.readouterr().out.strip().splitlines()
        assert len(out) == 2 and out[0].split()[1] == "1.0000", given
    assert main(["recommend", "--run", str(tmp_path), query]) == 2  # a folder that is not a run
    assert "is incomplete: missing config.json" in capsys.readouterr().err


def test_bad_k_is_a_clear_error_not_a_traceback(tiny_run_id, capsys):
    import pytest

    query = load_run(tiny_run_id).tracks["path"][0]
    for k in ("0", "-3", "two"):
        with pytest.raises(SystemExit) as done:
            main(["recommend", "--run", tiny_run_id, query, "-k", k])
        assert done.value.code == 2
        err = capsys.readouterr().err
        assert "argument -k" in err and "Traceback" not in err, k
    assert main(["recommend", "--run", tiny_run_id, query, "-k", "13"]) == 2
    assert "k=13 is more than the 12 tracks of the run" in capsys.readouterr().err


def test_recommend_names_tracks_with_the_one_display_name(tiny_run_id, capsys):
    from core.data.tracks import display_name

    run = load_run(tiny_run_id)
    assert main(["recommend", "--run", tiny_run_id, run.tracks["path"][5], "-k", "1"]) == 0
    assert f"  {display_name(run.tracks.iloc[5])}  (" in capsys.readouterr().out


def test_the_progress_bar_shows_message_and_values(capsys):
    from core.cli.common import Bar, postfix

    assert postfix("epoch 3", {"loss": 0.41234567}) == "epoch 3, loss=0.4123"
    assert postfix("", {"k": 4}) == "k=4"
    bar = Bar("train", "epoch")
    bar(1, 4, "epoch 1", loss=1.5)
    assert bar.bar.postfix == "epoch 1, loss=1.5"
    bar(2, 4, "epoch 2", loss=1.25)
    bar(1, 10, "ingesting: a.wav")  # a new stage: a fresh bar, not a bar going backwards
    assert bar.bar.total == 10 and bar.bar.n == 1
    bar(10, 10, "ingesting: j.wav")
    assert bar.bar is None  # closed when done
    assert "epoch 2, loss=1.25" in capsys.readouterr().err


def test_progress_reads_from_its_start_and_a_one_step_bar_shows_no_rate(capsys):
    from core.cli.common import MESSAGE_CHARS, Bar, postfix

    long = "working: the musicnn teacher embeds the library (once per dataset; cached)"
    shown = postfix(long, {})
    assert shown.startswith("working: the musicnn teacher") and shown.endswith("…") and len(shown) == MESSAGE_CHARS
    Bar("demo", "step")(1, 1, "working: evaluating")  # done at once
    err = capsys.readouterr().err
    assert "working: evaluating" in err and "/s" not in err and "step/s" not in err


def test_a_message_before_the_first_step_is_shown_at_once(capsys):
    from core.cli.common import Bar

    bar = Bar("ingest", "file")
    bar(0, 3, "preparing the audio code")  # no step yet: the bar would otherwise print it with the first file
    shown = capsys.readouterr().err.split("\r")[-1]
    assert "0/3" in shown and "preparing the audio code" in shown
    bar.close()


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--dataset", "any", "--batch-size", "0"], "batch_size must be at least 2 (got 0; flag --batch-size)"),
    (["train", "--dataset", "any", "--epochs", "0"], "epochs must be at least 1 (got 0; flag --epochs)"),
    (["train", "--dataset", "any", "--set", "lr=nan"], "lr must be more than 0.0 (got nan; --set lr=...)"),
    (["ingest", ".", "--name", "x", "--workers", "-5"], "workers must be at least 0 (got -5; flag --workers)"),
    # just past the bounds: every number has a finite range that means something
    (["train", "--dataset", "any", "--set", "lr=inf"], "lr must be at most 1.0 (got inf; --set lr=...)"),
    (["train", "--dataset", "any", "--chunk-seconds", "inf"],
     "chunk_seconds must be at most 30.0 (got inf; flag --chunk-seconds)"),
    (["train", "--dataset", "any", "--chunk-seconds", "1e-9"],
     "chunk_seconds must be at least 0.5 (got 1e-09; flag --chunk-seconds)"),
    (["train", "--dataset", "any", "--set", "weight_decay=nan"],
     "weight_decay must be at least 0.0 (got nan; --set weight_decay=...)"),
    (["train", "--dataset", "any", "--set", "mix_prob=5"], "mix_prob must be at most 1.0 (got 5.0; --set mix_prob=...)"),
    (["train", "--dataset", "any", "--epochs", "100000000000000000000"],
     "epochs must be at most 10000 (got 100000000000000000000; flag --epochs)"),
    (["ingest", ".", "--name", "x", "--max-seconds", "inf"], "max_seconds must be at most 3600.0 (got inf; flag --max-seconds)"),
    (["ingest", ".", "--name", "x", "--min-seconds", "30", "--max-seconds", "10"],
     "min_seconds (30.0) must not be more than max_seconds (10.0): no file could be read"),
    (["reference", "--dataset", "any", "--max-patches", "0"], "max_patches must be at least 1 (got 0; flag --max-patches)"),
    (["demo", "--seconds", "nan"], "seconds must be at least 1.0 (got nan; flag --seconds)"),
])
def test_settings_out_of_bounds_are_one_clear_line_before_any_work(argv, message, capsys):
    assert main(argv) == 2  # before the dataset is even looked for: --epochs 0 can never write an untrained run
    err = capsys.readouterr().err
    assert err.strip() == f"error: {message}" and "Traceback" not in err
