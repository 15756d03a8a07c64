"""Timbre Atlas REST API: the engine in ``core`` over HTTP (FastAPI). Start it with ``python -m api``."""
from .app import ApiConfig, create_app

__all__ = ["ApiConfig", "create_app"]
