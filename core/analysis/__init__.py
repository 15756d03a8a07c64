"""What researchers do with a run: classifiers, clusters, tags, collections, comparisons, maps, exports."""
