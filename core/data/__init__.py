"""Libraries and datasets: discovery, labels, uploads, ingest in worker processes, shards, feature tables."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "library": ("check_dataset_name=check_name", "check_source", "scan_library"),
    "dataset": ("Dataset", "dataset_dir", "list_datasets", "load_dataset"),
    "config": ("IngestConfig", "ImportConfig"),  # light: no pandas, no audio
    "tables": ("imported_datasets",),
    "tracks": ("clean_text", "display_name", "display_names", "search_tracks"),
    "uploads": ("UPLOAD_TYPES", "check_upload", "named_buffer", "safe_name", "save_uploads", "saved_upload"),
})
