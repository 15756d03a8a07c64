"""Libraries and datasets: discovery, labels, uploads, ingest in worker processes, shards, feature tables."""
