"""The seeded split of a manifest into train / validation / test, what it could not do as
asked, and which good images the operating points are set on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metricad.errors import MetricadError


def split_manifest(
    scan: pd.DataFrame,
    anomalous_train_fraction: float,
    seed: int,
    validation_fraction: float = 0.0,
    test_fraction: float = 0.0,
) -> pd.DataFrame:
    """Add `split` to a data source's table (manifest.SOURCE_COLUMNS). Row order is kept.

    - round(anomalous_train_fraction * n) seeded-random images of each defect type go to
      "train" (the article's protocol), the rest to "test";
    - good images keep the split their source assigns (MVTec's train/ and test/); of the good
      images it leaves unassigned (a folder, a CSV), round(test_fraction * n) seeded-random
      ones go to "test";
    - then round(validation_fraction * n) seeded-random good training images go to
      "validation" (held out of training; never a test image).

    A source that assigns every good image (MVTec) draws the same numbers as before
    test_fraction existed: its unassigned-good draw is skipped.
    """
    for name, value, high in (
        ("anomalous_train_fraction", anomalous_train_fraction, 1.0),
        ("validation_fraction", validation_fraction, 0.9),
        ("test_fraction", test_fraction, 0.9),
    ):
        if not 0.0 <= value <= high:
            raise MetricadError(f"split.{name} must be within [0, {high}], got {value}")
    assigned = scan["source_split"].to_numpy()
    anomalous = scan["label"].to_numpy() == 1
    split = np.where(assigned == "test", "test", "train").astype(object)
    split[anomalous] = "test"
    rng = np.random.default_rng(seed)
    defects = scan["defect"].to_numpy()
    # Sorted defect order: the draw for each type does not depend on the row order.
    for defect in sorted(set(defects[anomalous])):
        rows = np.flatnonzero(anomalous & (defects == defect))
        chosen = rng.permutation(len(rows))[: round(anomalous_train_fraction * len(rows))]
        split[rows[chosen]] = "train"
    unassigned = np.flatnonzero(~anomalous & (assigned == ""))
    if len(unassigned):
        chosen = rng.permutation(len(unassigned))[: round(test_fraction * len(unassigned))]
        split[unassigned[chosen]] = "test"
    good = np.flatnonzero(~anomalous & (split == "train"))
    held_out = rng.permutation(len(good))[: round(validation_fraction * len(good))]
    split[good[held_out]] = "validation"
    if len(good) == len(held_out):
        raise MetricadError(
            f"split: no good image is left for training ({int((~anomalous).sum())} good "
            "images in all); add images or lower split.test_fraction / validation_fraction"
        )
    result = scan.copy()
    result["split"] = split.astype(str)
    return result


def split_warnings(manifest: pd.DataFrame, anomalous_train_fraction: float) -> list[str]:
    """What the split could not do as asked: defect types with too few images to put
    round(fraction * n) > 0 of them in training (they all stay in test), and a test split
    without a good image or without a defect image (its image AUROC is undefined)."""
    warnings = []
    anomalous = manifest[manifest["label"] == 1]
    if anomalous_train_fraction > 0 and len(anomalous):
        in_train = anomalous.groupby("defect")["split"].apply(lambda s: (s == "train").sum())
        counts = anomalous.groupby("defect").size()
        left = [f"{d} ({counts[d]})" for d in sorted(counts.index) if in_train[d] == 0]
        if left:
            warnings.append(
                f"split.anomalous_train_fraction={anomalous_train_fraction} puts no image of "
                f"{', '.join(left)} in training (too few images); they all stay in test"
            )
    test_labels = set(manifest.loc[manifest["split"] == "test", "label"])
    for label, what in ((0, "good"), (1, "defect")):
        if label not in test_labels:
            warnings.append(
                f"split: the test split has no {what} image; its image AUROC is undefined "
                "(null in metrics/)"
            )
    return warnings


def validation_rows(split: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The good images operating points are set on: the validation split, or, when
    split.validation_fraction leaves none, the good training images (with a warning)."""
    validation = np.asarray(split) == "validation"
    if validation.any():
        return validation, []
    good_train = (np.asarray(split) == "train") & (np.asarray(labels) == 0)
    return good_train, [
        "split.validation_fraction leaves no validation image: the operating points come "
        "from the good training images, which the scores have seen (expect more false "
        "positives)"
    ]
