"""What researchers do with a run: classifiers, clusters, tags, collections, comparisons, maps, exports."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "agreement": ("agreement_runs", "stored_agreement", "track_agreement"),
    "atlas": ("cluster_labels", "map_histograms", "projection_quality"),
    "classify": ("MODEL_NAMES", "MODEL_SPECS", "best_per_input", "classifier_summary", "load_result", "results_dir",
                 "row_normalised", "top_importances"),
    "cluster_methods": ("profile_matrix",),
    "clusters": ("CLUSTER_METHODS=METHODS", "CLUSTER_METHOD_NAMES=METHOD_NAMES", "cluster_cards",
                 "cluster_inputs_done", "cluster_name", "clusters_dir", "load_clusters",
                 "cluster_result_name=result_name"),
    "collections": ("Collection", "SelectionSummary", "IN_COLLECTION", "THE_REST", "MAX_NAME_LENGTH", "add_rows",
                    "all_collections", "collection_rows", "collection_source", "collections_path",
                    "delete_collection", "m3u_playlist", "rename_collection", "rows_of_ids", "run_dataset",
                    "save_selection", "selection_summary", "track_table", "tracks_csv"),
    "compare": ("Comparison", "aligned_maps", "compare_runs"),
    "genre": ("GenrePrediction",),
    "maps": ("UNLABELLED", "COLOUR_LABEL", "POINT_LIMIT", "DENSITY_SAMPLE", "Colouring", "Density", "Focus",
             "FocusKind", "MapView", "Window", "colour_options", "colour_points", "colour_sources", "colour_title",
             "colouring", "density", "labels_in_order", "map_points", "map_view", "query_focus", "tag_sources",
             "track_focus"),
    "sources": ("Source", "SourceKind", "feature_correlation", "feature_groups", "source_from_dataset",
                "source_from_run"),
    "tags": ("aligned_tags", "run_tags", "search_by_tag", "tags_computable", "tags_reason", "top_tag_text"),
})
