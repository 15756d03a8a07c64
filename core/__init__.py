"""Timbre Atlas engine: decoding, log-mels, contrastive embeddings, runs, queries and analysis.

Never imports streamlit: the pages in ``pages/`` draw, this package computes.
"""
from core.base.numba_cache import use_project_numba_cache

__version__ = "0.4.0"  # pyproject.toml's version (tests/test_docs.py checks they agree)

use_project_numba_cache()  # before anything imports numba (librosa, umap): see core.data.workers
