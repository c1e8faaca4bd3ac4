"""Localisation metrics on small hand-built maps, AUPRO against paper values, the four kinds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from metricad.analysis.kinds import (
    IOU_CANDIDATES,
    KINDS,
    KindRule,
    choose_iou_threshold,
    classify_kind,
    classify_kinds,
)
from metricad.analysis.localization import localization_summary
from metricad.analysis.pixel_metrics import (
    aupro,
    hot_spot_distance,
    inside_outside_ratio,
    iou,
    pixel_auroc,
    pointing_hits,
)

KIND_PARAMS = {"tolerance_px": 1, "min_peak": 1e-6, "flat_fraction": 0.5}
RULE = KindRule(**KIND_PARAMS)


def _mask(shape: tuple[int, int], *pixels: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for pixel in pixels:
        mask[pixel] = True
    return mask


def _spot(shape: tuple[int, int], pixel: tuple[int, int], rest: float = 0.0) -> np.ndarray:
    heat = np.full(shape, rest)
    heat[pixel] = 1.0
    return heat


# --- pointing game and hot-spot distance ------------------------------------------------


def test_pointing_tolerance() -> None:
    mask = _mask((8, 8), (2, 2))
    heat = _spot((8, 8), (2, 4))  # two pixels to the right of the defect
    assert hot_spot_distance(heat, mask) == 2.0
    assert pointing_hits(heat, mask, tolerance_px=2).tolist() == [True]
    assert pointing_hits(heat, mask, tolerance_px=1).tolist() == [False]


def test_pointing_tolerance_is_a_disk_not_a_square() -> None:
    mask = _mask((8, 8), (2, 2))
    heat = _spot((8, 8), (4, 4))  # diagonal: sqrt(8) ~ 2.83 px away
    assert hot_spot_distance(heat, mask) == pytest.approx(math.sqrt(8))
    assert not pointing_hits(heat, mask, tolerance_px=2)[0]
    assert pointing_hits(heat, mask, tolerance_px=3)[0]


def test_pointing_ties_take_first_pixel_in_row_major_order() -> None:
    heat = np.zeros((8, 8))
    heat[1, 6] = heat[6, 1] = 1.0
    assert pointing_hits(heat, _mask((8, 8), (1, 6)), 0)[0]
    assert not pointing_hits(heat, _mask((8, 8), (6, 1)), 0)[0]


def test_all_zero_map_or_empty_mask_is_a_miss() -> None:
    mask = _mask((8, 8), (3, 3))
    assert not pointing_hits(np.zeros((8, 8)), mask, tolerance_px=100)[0]
    assert math.isnan(hot_spot_distance(np.zeros((8, 8)), mask))
    assert not pointing_hits(_spot((8, 8), (3, 3)), np.zeros((8, 8)), tolerance_px=100)[0]


def test_pointing_batch() -> None:
    masks = np.stack([_mask((8, 8), (1, 1)), _mask((8, 8), (5, 5))])
    heat = np.stack([_spot((8, 8), (1, 1)), _spot((8, 8), (0, 0))])
    hits = pointing_hits(heat, masks, tolerance_px=0)
    assert hits.dtype == bool
    assert hits.tolist() == [True, False]


def test_shape_mismatch_and_nan_are_rejected() -> None:
    with pytest.raises(ValueError, match="must be equal"):
        pointing_hits(np.zeros((2, 8, 8)), np.zeros((8, 8)), 1)
    with pytest.raises(ValueError, match="NaN"):
        pixel_auroc(np.full((8, 8), np.nan), _mask((8, 8), (1, 1)))
    with pytest.raises(ValueError, match="tolerance_px"):
        pointing_hits(np.zeros((8, 8)), np.zeros((8, 8)), -1)


# --- inside/outside ratio -----------------------------------------------------------------


def test_inside_outside_ratio_by_hand() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[0:2, 0:2] = True  # 4 defect pixels at heat 1.0
    heat = mask.astype(float)
    heat[7, 2:8] = 0.5  # 6 of the 60 outside pixels at 0.5: outside mean 0.05
    assert inside_outside_ratio(heat, mask) == pytest.approx(1.0 / 0.05)
    # Swap roles: the defect is colder than the rest, "inverted".
    assert inside_outside_ratio(1.0 - heat, mask) == pytest.approx(0.0 / (1 - 0.05))


def test_inside_outside_ratio_edge_cases() -> None:
    mask = _mask((8, 8), (3, 3))
    assert inside_outside_ratio(mask.astype(float), mask) == math.inf
    assert math.isnan(inside_outside_ratio(np.zeros((8, 8)), mask))
    assert math.isnan(inside_outside_ratio(np.ones((8, 8)), np.zeros((8, 8), dtype=bool)))
    assert math.isnan(inside_outside_ratio(np.ones((8, 8)), np.ones((8, 8), dtype=bool)))


# --- pixel AUROC ----------------------------------------------------------------------------


def test_pixel_auroc_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((3, 8, 8)) < 0.2
    heat = np.clip(rng.random((3, 8, 8)) * 0.8 + masks * 0.3, 0, 1)
    expected = roc_auc_score(masks.ravel(), heat.ravel())
    assert pixel_auroc(heat, masks) == pytest.approx(expected)


def test_pixel_auroc_one_class_is_none() -> None:
    assert pixel_auroc(np.random.default_rng(0).random((2, 8, 8)), np.zeros((2, 8, 8))) is None


# --- AUPRO ----------------------------------------------------------------------------------


def _hand_aupro_case() -> tuple[np.ndarray, np.ndarray]:
    """Two 3x4 images, one 2-pixel region each: 4 defect and 20 defect-free pixels.

    Heat 1.0: all of region A, one pixel of region B, 2 defect-free pixels
        -> FPR 2/20 = 0.1, PRO (1 + 1/2) / 2 = 0.75.
    Heat 0.5: the other pixel of B, 4 more defect-free pixels -> FPR 6/20 = 0.3, PRO 1.
    Heat 0 everywhere else -> FPR 1, PRO 1.
    """
    masks = np.zeros((2, 3, 4), dtype=bool)
    masks[0, 0, 0:2] = True  # region A
    masks[1, 2, 2:4] = True  # region B
    heat = np.zeros((2, 3, 4))
    heat[0, 0, 0:2] = 1.0
    heat[1, 2, 2] = 1.0
    heat[0, 2, 2:4] = 1.0
    heat[1, 2, 3] = 0.5
    heat[1, 0, 0:4] = 0.5
    return heat, masks


def test_aupro_hand_case() -> None:
    heat, masks = _hand_aupro_case()
    # Curve (0,0) (0.1,0.75) (0.3,1): 0.1*0.75/2 + 0.2*(0.75+1)/2 = 0.2125, / 0.3.
    assert aupro(heat, masks, fpr_limit=0.3) == pytest.approx(0.2125 / 0.3)
    # At FPR 0.2 the PRO is interpolated to 0.875: 0.0375 + 0.1*(0.75+0.875)/2 = 0.11875.
    assert aupro(heat, masks, fpr_limit=0.2) == pytest.approx(0.11875 / 0.2)
    # Up to FPR 0.1 only the first triangle: 0.0375 / 0.1.
    assert aupro(heat, masks, fpr_limit=0.1) == pytest.approx(0.375)


def test_aupro_regions_are_eight_connected() -> None:
    # (1,1) touches (2,2) at a corner: one 3-pixel region, of which the map covers 1/3.
    # (With 4-connectivity it would be two regions, PRO (1 + 0) / 2, and 0.575.)
    mask = _mask((6, 6), (1, 1), (2, 2), (2, 3))
    heat = _spot((6, 6), (1, 1))
    # Curve (0,0) (0,1/3) (1,1); at FPR 0.3 the PRO is 1/3 + 0.3 * 2/3 = 8/15, so the area
    # is 0.3 * (1/3 + 8/15) / 2 and the score (1/3 + 8/15) / 2 = 13/30.
    assert aupro(heat, mask) == pytest.approx(13 / 30)


def test_aupro_sanity() -> None:
    masks = np.zeros((5, 64, 64), dtype=bool)
    for image in range(4):  # 16 separate 8x15 regions; image 4 is defect-free
        for row in range(4):
            masks[image, 4 + 15 * row : 12 + 15 * row, 5 + 12 * image : 20 + 12 * image] = True
    assert aupro(masks.astype(float), masks) == pytest.approx(1.0)
    assert aupro(1.0 - masks, masks) == pytest.approx(0.0)
    # Random heat: PRO ~ FPR, so the area up to 0.3 is ~ 0.3² / 2 and the score ~ 0.15.
    random_heat = np.random.default_rng(1).random(masks.shape)
    assert aupro(random_heat, masks) == pytest.approx(0.15, abs=0.015)
    # float32 input (kept as float32 to save memory) gives the same result.
    assert aupro(masks.astype(np.float32), masks) == pytest.approx(1.0)


def _aupro_by_definition(heat: np.ndarray, masks: np.ndarray, fpr_limit: float) -> float:
    """Slow reference: threshold at every distinct value and measure each region directly."""
    regions = []
    for image, mask in enumerate(masks):
        labelled, count = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [(image, labelled == k) for k in range(1, count + 1)]
    ok = ~masks
    points = [(0.0, 0.0)]
    for t in np.unique(heat)[::-1]:
        hot = heat >= t
        pro = np.mean([hot[image][region].mean() for image, region in regions])
        points.append((hot[ok].mean(), pro))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x0 >= fpr_limit:
            break
        if x1 > fpr_limit:  # cut the last segment at the limit
            y1 = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            x1 = fpr_limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / fpr_limit


@pytest.mark.parametrize("seed", range(4))
def test_aupro_matches_definition_on_random_maps_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = rng.random((3, 10, 10)) < 0.15
    heat = np.round(rng.random((3, 10, 10)) * 0.7 + masks * 0.3, 1)  # few levels: many ties
    for limit in (0.05, 0.3, 1.0):
        assert aupro(heat, masks, limit) == pytest.approx(_aupro_by_definition(heat, masks, limit))


def test_aupro_undefined_and_invalid() -> None:
    assert aupro(np.ones((2, 8, 8)), np.zeros((2, 8, 8))) is None  # no defect region
    assert aupro(np.ones((8, 8)), np.ones((8, 8))) is None  # no defect-free pixel
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(np.ones((8, 8)), _mask((8, 8), (1, 1)), fpr_limit=0)


# --- IoU ------------------------------------------------------------------------------------


def test_iou_by_hand() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[0:4, 0:4] = True  # 16 pixels
    heat = np.zeros((8, 8))
    heat[0:2, 0:4] = 0.9  # covers 8 of them
    heat[6:8, 0:4] = 0.9  # and 8 outside: IoU 8 / 24
    heat[4, 0:4] = 0.3  # below the threshold
    assert iou(heat, mask, 0.5).tolist() == pytest.approx([1 / 3])
    assert iou(heat, mask, 0.2).tolist() == pytest.approx([8 / 28])


def test_iou_batch_and_empty() -> None:
    masks = np.stack([_mask((4, 4), (0, 0)), np.zeros((4, 4), dtype=bool)])
    heat = np.stack([_spot((4, 4), (0, 0)), np.zeros((4, 4))])
    result = iou(heat, masks, 0.5)
    assert result[0] == 1.0
    assert math.isnan(result[1])  # both empty


def test_choose_iou_threshold() -> None:
    # Defect heat 0.8, a ring of 0.4 around it, background 0.1: every t in (0.4, 0.8]
    # outlines the defect exactly (IoU 1); the lowest such candidate, 0.45, must win.
    heat = np.full((12, 12), 0.1)
    heat[3:9, 3:9] = 0.4
    heat[5:7, 5:7] = 0.8
    mask = heat == 0.8
    good_heat = np.ones((12, 12))  # a good image: ignored, or it would push t above 1
    heatmaps = np.stack([heat, good_heat])
    masks = np.stack([mask, np.zeros((12, 12), dtype=bool)])
    assert choose_iou_threshold(heatmaps, masks) == 0.45
    assert choose_iou_threshold(heatmaps, masks, candidates=[0.9, 0.6, 0.3, 0.5]) == 0.5
    assert 0.45 in IOU_CANDIDATES and len(IOU_CANDIDATES) == 19


def test_choose_iou_threshold_needs_a_defect() -> None:
    with pytest.raises(ValueError, match="non-empty mask"):
        choose_iou_threshold(np.ones((8, 8)), np.zeros((8, 8)))


# --- the four kinds -------------------------------------------------------------------------

SHAPE = (16, 16)


def _defect_mask() -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[2:5, 2:5] = True
    return mask


def _kind_maps() -> dict[str, np.ndarray]:
    """One map per kind for `_defect_mask()` (and peak 1.0)."""
    mask = _defect_mask()
    correct = _spot(SHAPE, (3, 3), rest=0.1)
    inverted = np.where(mask, 0.0, 0.3)
    inverted[12, 12] = 1.0  # the hottest spot far from the defect, which is cold
    near_miss = np.where(mask, 0.5, 0.1)
    near_miss[3, 7] = 1.0  # 3 px right of the defect's edge (column 4)
    flat = np.full(SHAPE, 0.6)
    flat[3, 3] = 1.0  # would hit, but heat everywhere is no localisation
    return {"correct": correct, "inverted": inverted, "near_miss": near_miss, "no_response": flat}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_triggered(kind: str) -> None:
    assert classify_kind(_kind_maps()[kind], _defect_mask(), 1.0, RULE) == kind


def test_no_response_from_a_zero_peak_wins_over_a_hit() -> None:
    correct = _kind_maps()["correct"]
    assert classify_kind(correct, _defect_mask(), 0.0, RULE) == "no_response"


def test_flat_fraction_threshold() -> None:
    flat = _kind_maps()["no_response"]  # every pixel >= 0.5
    params = {**KIND_PARAMS, "flat_fraction": 1.0}
    assert classify_kind(flat, _defect_mask(), 1.0, KindRule(**params)) == "no_response"
    flat[8:, :] = 0.0  # now half the pixels are hot: still "flat" at 0.5, not at 0.6
    assert classify_kind(flat, _defect_mask(), 1.0, RULE) == "no_response"
    params = {**KIND_PARAMS, "flat_fraction": 0.6}
    assert classify_kind(flat, _defect_mask(), 1.0, KindRule(**params)) == "correct"


def test_hit_wins_over_inverted() -> None:
    # Hottest pixel on the defect, but the rest of the defect is colder than its surroundings.
    heat = np.where(_defect_mask(), 0.0, 0.4)
    heat[3, 3] = 1.0
    assert inside_outside_ratio(heat, _defect_mask()) < 1
    assert classify_kind(heat, _defect_mask(), 1.0, RULE) == "correct"


def test_tolerance_turns_a_near_miss_into_correct() -> None:
    near_miss = _kind_maps()["near_miss"]
    assert hot_spot_distance(near_miss, _defect_mask()) == 3.0
    params = {**KIND_PARAMS, "tolerance_px": 3}
    assert classify_kind(near_miss, _defect_mask(), 1.0, KindRule(**params)) == "correct"


def test_kinds_need_a_defect_and_valid_parameters() -> None:
    with pytest.raises(ValueError, match="defect images only"):
        classify_kind(np.ones(SHAPE), np.zeros(SHAPE), 1.0, RULE)
    with pytest.raises(ValueError, match="flat_fraction"):
        KindRule(**{**KIND_PARAMS, "flat_fraction": 0})


def test_classify_kinds_batch() -> None:
    maps = _kind_maps()
    heat = np.stack([maps[kind] for kind in KINDS])
    masks = np.stack([_defect_mask()] * 4)
    assert classify_kinds(heat, masks, np.ones(4), RULE) == list(KINDS)
    with pytest.raises(ValueError, match="peaks"):
        classify_kinds(heat, masks, np.ones(3), RULE)


# --- summary --------------------------------------------------------------------------------


def test_localization_summary() -> None:
    maps = _kind_maps()
    # One defect image per kind, plus a second near miss and a good image.
    second_near_miss = np.where(_defect_mask(), 0.5, 0.1)
    second_near_miss[3, 10] = 1.0  # 6 px from the defect
    heat = np.stack([*(maps[kind] for kind in KINDS), second_near_miss, np.zeros(SHAPE)])
    masks = np.stack([_defect_mask()] * 5 + [np.zeros(SHAPE, dtype=bool)])
    peaks = np.array([1.0] * 5 + [0.0])
    summary = localization_summary(heat, masks, peaks, RULE, iou_threshold=0.5)

    assert summary["n_images"] == 6
    assert summary["n_defect_images"] == 5
    assert summary["kinds"] == {"correct": 1, "inverted": 1, "near_miss": 2, "no_response": 1}
    assert summary["kind_share"] == {
        "correct": 0.2,
        "inverted": 0.2,
        "near_miss": 0.4,
        "no_response": 0.2,
    }
    # The flat map's hottest pixel is on the defect too: 2 of 5 hit.
    assert summary["pointing_game"] == 0.4
    assert summary["near_miss_median_distance_px"] == 4.5  # median of 3 and 6
    assert summary["pixel_auroc"] == round(pixel_auroc(heat, masks), 6)
    assert summary["aupro"] == round(aupro(heat, masks), 6)
    assert summary["iou"] == round(float(np.mean(iou(heat[:5], masks[:5], 0.5))), 6)
    ratios = [inside_outside_ratio(h, m) for h, m in zip(heat[:5], masks[:5], strict=True)]
    assert summary["inside_outside_ratio"] == round(float(np.median(ratios)), 6)
    assert summary["iou_threshold"] == 0.5
    json.dumps(summary, allow_nan=False)


def test_localization_summary_without_defects_is_json_safe() -> None:
    summary = localization_summary(
        np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), np.zeros(2), RULE, iou_threshold=0.5
    )
    assert summary["n_defect_images"] == 0
    assert summary["kinds"] == dict.fromkeys(KINDS, 0)
    for key in ("pointing_game", "inside_outside_ratio", "pixel_auroc", "aupro", "iou"):
        assert summary[key] is None
    assert summary["near_miss_median_distance_px"] is None
    json.dumps(summary, allow_nan=False)
