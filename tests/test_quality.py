"""Map quality: one trustworthiness per run and projection, cached in the run folder, the same figure on the Map
page, the Compare page and ``python -m core compare`` (each naming its projection)."""
from __future__ import annotations

import json
import re

from core.analysis.quality import QUALITY_FOLDER, map_trust, projection_quality
from core.cli import main
from core.runs.folder import load_run
from tests.pagetest import open_page
from tests.run_copies import copy_run


def test_the_cli_gives_every_projection_named_with_the_figure_the_pages_show(tiny_run_id, capsys):
    other = copy_run(tiny_run_id, "tiny-quality-other")
    assert main(["compare", tiny_run_id, other]) == 0
    out = capsys.readouterr().out
    for method, title in (("pca", "PCA"), ("tsne", "t-SNE"), ("umap", "UMAP")):
        block = out.split(f"map trustworthiness, {title} ")[1].split("\n\n")[0]
        expected = projection_quality(load_run(tiny_run_id), method)["value"]  # what the Map page's caption reads
        assert f"[1] trustworthiness {expected:.3f} (k=5, 12 tracks)" in block, block
        assert (load_run(tiny_run_id).path / QUALITY_FOLDER / f"{method}.json").exists()  # measured once, kept
    assert main(["compare", tiny_run_id, other, "--method", "tsne", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["trustworthiness_by_projection"]) == ["tsne"]
    assert data["trustworthiness"][other]["method"] == "tsne"


def test_the_compare_page_names_the_projection_of_its_figure(tiny_run_id):
    other = copy_run(tiny_run_id, "tiny-quality-page")
    at = open_page("pages/compare.py", active_run_id=tiny_run_id)
    at.multiselect(key="compare_runs").set_value([tiny_run_id, other]).run()
    assert not at.exception, [e.message for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    shown = re.findall(r"(\S+) map: trustworthiness (\d\.\d{3})", captions)
    expected = f"{map_trust(load_run(tiny_run_id), 'umap').value:.3f}"
    assert shown == [("UMAP", expected)] * 2, captions
