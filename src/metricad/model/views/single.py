"""`single`: the image as it is (the article's)."""

from __future__ import annotations

from metricad.model.views.base import VIEWS, ViewSet

VIEWS.register("single")(ViewSet(1, lambda images: [images], lambda maps, _: maps, identity=True))
