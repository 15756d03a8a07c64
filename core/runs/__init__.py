"""Run folders: building them (training, the reference, embedding datasets) and reading them."""
