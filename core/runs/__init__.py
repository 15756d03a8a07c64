"""Run folders: building them (training, the reference, embedding datasets) and reading them."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "folder": ("Run", "load_run", "resolve_run", "list_runs", "first_healthy_run", "run_problem", "run_summary",
               "runs_table", "config_differences"),
    "aliases": ("MAX_ALIAS_CHARS=MAX_CHARS", "read_alias", "run_label", "set_alias"),
    "build": ("train_run",),
    "config": ("ReferenceConfig",),  # light: no torch
    "reference": ("reference_run",),
    "dataset_embeddings": ("embed_dataset", "load_dataset_embeddings"),
})
