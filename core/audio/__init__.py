"""Audio in: decoding any file to mono float32, log-mels and classic audio features, microphone frames."""
