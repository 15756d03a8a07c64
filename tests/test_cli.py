import subprocess
import sys

import numpy as np

from core.cli import build_parser, main
from core.runs import load_run
from core.train import TrainConfig

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_every_train_config_field_is_a_flag():
    args = build_parser().parse_args(["train", "--dataset", "d", "--epochs", "7", "--widths", "8", "16"])
    assert args.epochs == 7 and args.widths == [8, 16]
    for field in TrainConfig.__dataclass_fields__:
        assert hasattr(args, field), field


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
