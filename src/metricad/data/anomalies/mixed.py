"""`mixed`: each image becomes a CutPaste rectangle, a scar or a noise blend, one drawn per
image: thin strips and blobs stand in for the cuts, folds and pokes rectangles resemble less."""

from __future__ import annotations

from metricad.data.anomalies.base import ANOMALIES, Mixture

MIXED = Mixture("cutpaste", "scar", "noise")
ANOMALIES.register("mixed")(MIXED)
