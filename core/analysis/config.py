"""The analysis wing's settings, light to import (the command line and the job registry read them without pandas,
scikit-learn or torch): what classifiers and clusters run on, :class:`ClassifyConfig`, :class:`ClusterConfig`,
:class:`TagsConfig`, and the defaults of comparisons and exports."""
from __future__ import annotations

import dataclasses
from typing import Literal, get_args

from core.base.config import MAX_SEED, MAX_THREADS, check_bounds, doc
from core.base.errors import TimbreError

InputName = Literal["features", "embeddings", "both"]  # what classifiers and clusters run on


INPUTS: tuple[InputName, ...] = get_args(InputName)


ModelName = Literal["xgboost", "lightgbm", "catboost", "svm", "mlp", "logreg", "knn"]  # core.analysis.classify.models


MODEL_NAMES: tuple[ModelName, ...] = get_args(ModelName)


@dataclasses.dataclass(frozen=True)
class ClassifyConfig:
    """One classifier job: which inputs and models, the split, the folds and the outlier rule."""

    input: tuple[InputName, ...] = doc((), "features, embeddings and/or both; empty = every input the source has")
    models: tuple[ModelName, ...] = doc(MODEL_NAMES, "models to train (see MODEL_SPECS for each grid)")
    test_size: float = doc(0.25, "share of each label held out as the fixed test split (50 of 200 tracks)",
                           above=0.0, at_most=0.9)
    split_seed: int = doc(0, "seed of the test split; one split per dataset and seed, stored and reused",
                         at_least=0, at_most=MAX_SEED)
    cv_folds: int = doc(5, "stratified folds of the reported CV accuracy; smaller classes are left out, named",
                       at_least=2, at_most=100)
    search_folds: int = doc(5, "stratified folds of the grid search on the training part", at_least=2,
                           at_most=100)
    nested_cv: bool = doc(False, "re-run the grid search inside every CV fold: unbiased CV, ~6x the time")
    outliers: bool = doc(False, "drop training rows flagged by the IQR rule (fitted on training rows only)")
    iqr_factor: float = doc(3.0, "a value is extreme beyond Q1 - f*IQR or Q3 + f*IQR of its training column",
                            above=0.0, at_most=100.0)
    outlier_share: float = doc(0.1, "a row is an outlier when more than this share of its values are extreme",
                               at_least=0.0, at_most=1.0)
    permutation_repeats: int = doc(5, "shuffles per feature for permutation importance on the test split",
                                  at_least=1, at_most=1000)
    seed: int = doc(0, "seeds the models and the CV fold shuffles", at_least=0, at_most=MAX_SEED)
    n_jobs: int = doc(2, "grid-search fits run in parallel processes; each model is single-threaded (on a few "
                         "hundred rows threads cost more than they save)", at_least=1, at_most=MAX_THREADS)

    def __post_init__(self):
        check_bounds(self)


Method = Literal["kmeans", "hdbscan"]  # how core.analysis.clusters groups tracks


METHODS: tuple[Method, ...] = get_args(Method)


MAX_CLUSTERS = 1000  # the most clusters a k-means curve tries: beyond, no card or chart can be read


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """One clustering job."""

    input: tuple[InputName, ...] = doc((), "features, embeddings and/or both; empty = every input the source has")
    k_min: int = doc(2, "smallest k tried", at_least=2, at_most=MAX_CLUSTERS)
    k_max: int = doc(12, "largest k tried (capped at tracks - 1); 12 covers a few genres with sub-styles",
                     at_least=2, at_most=MAX_CLUSTERS)
    n_init: int = doc(10, "k-means restarts per k; the best inertia wins", at_least=1, at_most=1000)
    seed: int = doc(0, "seeds k-means, UMAP and the PCA", at_least=0, at_most=MAX_SEED)
    method: Method = doc("kmeans", "kmeans (every track in one of k clusters) or hdbscan (dense groups + noise)")
    min_cluster_size: int = doc(8, "hdbscan: the smallest group that counts as a cluster (emotify-dev: 8-15 give "
                                   "the same clusters, 5 splits them)", at_least=2, at_most=100_000)
    reduce: Literal["umap", "none"] = doc("umap", "hdbscan: cluster a UMAP reduction of the matrix or the matrix "
                                                  "itself (emotify-dev: on the raw embeddings 40% is noise, ARI 0.22; "
                                                  "on UMAP 1-4% noise, ARI 0.29-0.32)")
    umap_dims: int = doc(5, "hdbscan: dimensions of the UMAP reduction (emotify-dev: 5 found 4-5 clusters for "
                            "three seeds, 10 from 3 to 5)", at_least=2, at_most=100)

    def __post_init__(self):
        check_bounds(self)
        if self.k_min > self.k_max:
            raise TimbreError(f"k_min ({self.k_min}) must not be more than k_max ({self.k_max})")


DEFAULT_MAX_PATCHES = 16  # core.runs.config.ReferenceConfig.max_patches: the cache the reference run writes


@dataclasses.dataclass(frozen=True)
class TagsConfig:
    """Settings of a tags job (:func:`core.analysis.tags.compute_dataset_tags`)."""

    max_patches: int = doc(DEFAULT_MAX_PATCHES, "3 s patches per track musicnn tags, evenly spread (the default "
                                                "reuses the cache a reference run writes)", at_least=1,
                           at_most=256)

    def __post_init__(self):
        check_bounds(self)


@dataclasses.dataclass(frozen=True)
class AgreementConfig:
    """Settings of a neighbour-agreement job (:func:`core.analysis.agreement.track_agreement`)."""

    k: int = doc(10, "neighbours per track compared by Jaccard (the Compare page's neighbour sets)", at_least=1,
                 at_most=100)

    def __post_init__(self):
        check_bounds(self)


MAX_RUNS = 4  # runs one comparison takes (core.analysis.compare): four maps side by side still read


NEIGHBOURS = 10  # neighbour sets compared by Jaccard


SAMPLE = 5000  # shared tracks above this: neighbour figures on a seeded sample (a 5000^2 float32 matrix is 100 MB)


TARGETS = ("tensorboard", "mlflow")  # where core.analysis.export writes a run


EXPERIMENT = "timbre-atlas"  # the MLflow experiment runs are exported into
