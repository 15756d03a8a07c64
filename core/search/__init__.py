"""Finding tracks: exact cosine, the ANN index, passages for recordings, and the 2-D projections."""
