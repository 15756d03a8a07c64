"""One router per resource: runs (with health), tracks, recommend (uploads and sets of tracks), genre,
collections."""
