from core.runs import config_differences, list_runs
from core.train import TrainConfig, train_run
from tests.pagetest import open_page


def _second_run(tiny_run_id) -> str:
    others = [r for r in list_runs() if r != tiny_run_id and "tiny" in r]
    return others[0] if others else train_run("tiny", cfg=TrainConfig(epochs=2, batch_size=12, widths=(8, 16, 32, 64),
                                                                        embed_chunks=4, lr=1e-3, seed=0))


def test_config_differences_lists_only_what_differs(tiny_run_id):
    other = _second_run(tiny_run_id)
    diff = config_differences([tiny_run_id, other])
    assert "train.epochs" in diff.index and "train.lr" in diff.index
    assert "dataset" not in diff.index and "mel_params.n_mels" not in diff.index
    assert list(diff.columns) == [tiny_run_id, other]


def test_compare_page_shows_two_runs_side_by_side(tiny_run_id):
    other = _second_run(tiny_run_id)
    at = open_page("pages/compare.py", active_run_id=tiny_run_id)
    chosen = at.multiselect(key="compare_runs").value
    assert chosen == [tiny_run_id, other]
    scores, differences = at.dataframe
    assert list(scores.value["run"]) == chosen
    assert "train.epochs" in differences.value.index
    assert len(at.get("plotly_chart")) == 3  # loss curves + one map per run
