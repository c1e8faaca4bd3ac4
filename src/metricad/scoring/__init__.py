"""Phase 3, the image anomaly scores: each one torch module (fit on the good training
embeddings, forward, its state as buffers) registered under its `score.scores` name by its
own file in this package (softmax.py, knn.py, gaussian.py, map.py; their interface: base.py).
ScoringHead (head.py) holds the chosen scores and their operating points; evaluate, predict and
the ONNX export all run it; scorer_file.py saves and loads it. Adding a score:
docs/architecture.md.
"""

from __future__ import annotations

from metricad.registry import Registry, import_entries
from metricad.scoring.base import Score

SCORES: Registry[type[Score]] = Registry("score", "score.scores")

import_entries(__name__, __path__)
