"""How good an embedding is: k-NN genre accuracy (beside MFCCs) and query by recording."""
