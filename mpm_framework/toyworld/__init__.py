"""The toy "shapes world": scenes, rendering, corpora and the demo experiment."""
