"""What every wing uses: errors, configs as CLI flags, constants, atomic writes, paths, progress, locks."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "errors": ("TimbreError", "AudioDecodeError", "DatasetError", "RunError", "FeatureTableError", "ClassifyError",
               "ClusterError", "TagError", "CollectionError", "CompareError", "ExportError", "ListenerError",
               "HistoryError", "QueryError", "InvalidQuery", "NeedsAudio", "NotFound", "NoClassifier", "TooLarge",
               "without_paths"),
    "config": ("add_dataclass_args", "dataclass_from_args", "check_bounds", "config_from_dict", "doc"),
    "constants": ("SAMPLE_RATE", "DEFAULT_K", "DEFAULT_SET_K", "MAX_K", "MAX_UPLOAD_MB", "MAX_QUERY_SECONDS",
                  "MSD_TAGS"),
    "paths": ("LIBRARY_ROOTS_ENV", "artifacts_dir", "datasets_dir", "runs_dir", "library_roots", "shown_path",
              "public_path"),
    "progress": ("Progress",),
})
