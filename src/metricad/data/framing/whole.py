"""`whole`: the photo as it is (the default)."""

from __future__ import annotations

import numpy as np

from metricad.data.framing.base import FRAMINGS


@FRAMINGS.register("whole")
def whole(image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    return image, mask
