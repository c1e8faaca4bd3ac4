"""Where each stage writes; dvc.yaml declares the same paths (relative to the repo root)."""

from pathlib import Path

PREPARED_DIR = Path("data/prepared")
PREPARED_MANIFEST = PREPARED_DIR / "manifest.csv"
SYNTHETIC_ROOT = PREPARED_DIR / "synthetic"
RESIZED_DIR = Path("data/resized")
RESIZED_MANIFEST = RESIZED_DIR / "manifest.csv"
MODEL = Path("models/model.pt")
TRAIN_STATE = Path("models/train_state.pt")
EMBEDDINGS_DIR = Path("data/embeddings")
EMBEDDINGS = EMBEDDINGS_DIR / "embeddings.npy"
PREDICTIONS = EMBEDDINGS_DIR / "predictions.csv"
HEATMAPS_DIR = Path("data/gradcam")
HEATMAPS = HEATMAPS_DIR / "heatmaps.npy"
HEATMAP_INDEX = HEATMAPS_DIR / "index.csv"
METRICS_DIR = Path("metrics")
PLOTS_DIR = Path("plots")
