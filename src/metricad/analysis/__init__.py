"""Phase 4, what the trained network does, measured: t-SNE maps, classification metrics,
GradCAM heat maps (methods in `cams/`) and how well they localise the defects."""
