"""Timbre Atlas engine: decoding, log-mels, contrastive embeddings, runs, queries and analysis.

Never imports streamlit: the pages in ``pages/`` draw, this package computes.
"""
__version__ = "0.1.0"
