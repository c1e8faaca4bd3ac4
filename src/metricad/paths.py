"""Where each stage writes; dvc.yaml declares the same paths (relative to the repo root)."""

from pathlib import Path

PREPARED_DIR = Path("data/prepared")
PREPARED_MANIFEST = PREPARED_DIR / "manifest.csv"
RESIZED_DIR = Path("data/resized")
RESIZED_MANIFEST = RESIZED_DIR / "manifest.csv"
# The framing the photos got (resize.framing auto: the one chosen), for train and predict.
RESIZED_FRAMING = RESIZED_DIR / "framing.json"
SYNTHETIC_SAMPLE_DIR = Path("data/synthetic_sample")
SYNTHETIC_IMAGES = SYNTHETIC_SAMPLE_DIR / "images.npy"
SYNTHETIC_MASKS = SYNTHETIC_SAMPLE_DIR / "masks.npy"
SYNTHETIC_INDEX = SYNTHETIC_SAMPLE_DIR / "index.csv"
MODEL = Path("models/model.pt")
TRAIN_STATE = Path("models/train_state.pt")
SCORER = Path("models/scorer.npz")  # the scores and their operating points (scoring/head.py)
# The gradcam stage's CAM method, layer and target: predict draws its heat maps the same way.
INFERENCE_SETTINGS = Path("models/inference.json")
EMBEDDINGS_DIR = Path("data/embeddings")
EMBEDDINGS = EMBEDDINGS_DIR / "embeddings.npy"
PREDICTIONS = EMBEDDINGS_DIR / "predictions.csv"
SYNTHETIC_EMBEDDINGS = EMBEDDINGS_DIR / "synthetic.npy"
SYNTHETIC_PREDICTIONS = EMBEDDINGS_DIR / "synthetic.csv"
# How the embeddings were computed (views, the batch size every batch is padded to): the score
# stage carries it into scorer.npz for predict.
EMBEDDING_SETTINGS = EMBEDDINGS_DIR / "settings.json"
HEATMAPS_DIR = Path("data/gradcam")
HEATMAPS = HEATMAPS_DIR / "heatmaps.npy"
HEATMAP_INDEX = HEATMAPS_DIR / "index.csv"
# The network's own maps (segmentation, patch) go beside them as <name>.npy.
METRICS_DIR = Path("metrics")
# The headline `dvc metrics show` prints (report/headline.py): a file per score, per heat map.
SCORE_HEADLINES = METRICS_DIR / "scores"
MAP_HEADLINES = METRICS_DIR / "maps"
# What train did (epochs, the synthetic kind it used after its fallbacks): the stages after
# it title and sample from this, not from params.yaml.
TRAIN_SUMMARY = METRICS_DIR / "train.json"
LIVE_DIR = Path("dvclive")  # the train stage's per-epoch log (DVCLive)
PLOTS_DIR = Path("plots")
