"""Phase 1, the images: where they come from (`sources/`, the demo generator `demo/`), the
neutral manifest and the split, image files, batches for the network, synthetic anomalies."""
