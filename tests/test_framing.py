"""Framings (data/framing/): an elongated dark object on a light ground, drawn at an angle,
comes out turned along its axis, wide end left, centred; its mask follows; object_band folds
its band into a square; a photo with no object is a one-line error naming it; the resize stage
and predict frame alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from metricad.data.framing import chosen_framing, framed, framer, resolved
from metricad.data.framing.object_axis import ObjectSettings
from metricad.data.framing.object_band import BandSettings
from metricad.data.images import load_mask, load_rgb, resize_dataset, resize_rgb, save_png
from metricad.errors import MetricadError
from metricad.model.checkpoint import trained_with
from metricad.model.inference import embed_and_score
from metricad.model.torch_model import arch_from_params, build_model
from metricad.model.training import settings_for_data
from metricad.params import params_from_dict
from metricad.scoring.head import ScoringHead
from metricad.scoring.knn import KnnSettings
from metricad.serving.detector import Detector, resize_of

SIDE = 128


def _screw(angle_degrees: float, head_right: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A light photo with a dark bar (a shank) and a dark disc (a head) at one end, turned by
    `angle_degrees` about a point off the centre; the mask marks the head."""
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    angle = np.radians(angle_degrees)
    cx, cy = 60.0, 70.0
    along = (xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)
    across = -(xs - cx) * np.sin(angle) + (ys - cy) * np.cos(angle)
    end = 30.0 if head_right else -30.0
    shank = (np.abs(along) < 34) & (np.abs(across) < 4)
    head = (along - end) ** 2 + across**2 < 10**2
    grey = np.full((SIDE, SIDE), 200.0)
    grey[shank | head] = 60.0
    rng = np.random.default_rng(0)
    image = (grey[..., None] + rng.normal(0, 3, (SIDE, SIDE, 3))).clip(0, 255).astype(np.uint8)
    return image, head


def _dark(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero(image.mean(axis=2) < 130)


@pytest.mark.parametrize("angle", [0.0, 35.0, 100.0, -60.0])
@pytest.mark.parametrize("head_right", [False, True])
def test_object_axis_turns_the_object_head_left_and_centres_it(angle, head_right):
    image, head = _screw(angle, head_right)
    turned, mask = framed(image, head, "object_axis", ObjectSettings(), "screw.png")
    assert turned.shape == image.shape and mask.shape == head.shape and mask.dtype == bool
    ys, xs = _dark(turned)
    assert np.ptp(xs) > 3 * np.ptp(ys)  # lies along the width
    assert abs(xs.mean() - SIDE / 2) < 4 and abs(ys.mean() - SIDE / 2) < 4
    head_ys, head_xs = np.nonzero(mask)
    assert head_xs.mean() < SIDE / 2 - 15  # the head (the wide end) left, and its mask with it
    assert abs(head_ys.mean() - SIDE / 2) < 4


def test_flat_paints_the_ground_one_grey():
    image, head = _screw(20.0)
    flat, _ = framed(image, head, "object_axis", ObjectSettings(flat=True), "screw.png")
    ground = flat[:10].reshape(-1, 3)
    assert (ground == ground[0]).all()
    assert abs(int(ground[0, 0]) - 190) <= 1


def test_object_band_folds_the_band_into_a_square():
    image, head = _screw(35.0)
    band, mask = framed(image, head, "object_band", BandSettings(), "screw.png")
    assert band.shape == (SIDE // 2, SIDE // 2, 3) and mask.shape == (SIDE // 2, SIDE // 2)
    ys, xs = _dark(band)
    # Two halves, one above the other: dark pixels in the top and the bottom half.
    assert (ys < SIDE // 4).sum() > 50 and (ys >= SIDE // 4).sum() > 50
    head_ys, _ = np.nonzero(mask)
    assert len(head_ys) and head_ys.max() < SIDE // 4  # the head's half is on top


def test_whole_is_the_photo_as_it_is():
    image, head = _screw(35.0)
    same, mask = framed(image, head, "whole", None, "screw.png")
    assert same is image and mask is head


def test_a_photo_without_an_object_is_an_error_naming_it():
    blank = np.full((SIDE, SIDE, 3), 200, np.uint8)
    with pytest.raises(MetricadError) as caught:
        framed(blank, None, "object_band", BandSettings(), "train/good/007.png")
    message = str(caught.value)
    assert message.startswith("train/good/007.png: no object darker than the photo's border")
    assert "\n" not in message


def test_the_resize_stage_frames_images_and_masks_alike(tmp_path):
    image, head = _screw(50.0)
    save_png(image, tmp_path / "a.png")
    save_png(head, tmp_path / "a_mask.png")
    manifest = pd.DataFrame(
        {
            "path": [str(tmp_path / "a.png")],
            "mask_path": [str(tmp_path / "a_mask.png")],
            "name": ["a"],
        }
    )
    params = params_from_dict({"resize": {"framing": "object_axis", "size": 64}})
    out = resize_dataset(manifest, 64, tmp_path / "out", False, framer(params.resize))
    turned, mask = framed(image, head, "object_axis", ObjectSettings(), "a.png")
    resized_mask = load_mask(out["mask_path"][0])
    assert load_rgb(out["path"][0]).shape == (64, 64, 3)
    _, head_xs = np.nonzero(resized_mask)
    assert head_xs.mean() < 32 - 7  # the head's mask turned with the photo, then resized
    # The same photo without an object stops the stage with its file named.
    save_png(np.full((SIDE, SIDE, 3), 200, np.uint8), tmp_path / "b.png")
    blank = pd.DataFrame({"path": [str(tmp_path / "b.png")], "mask_path": [""], "name": ["b"]})
    with pytest.raises(MetricadError, match=r"b\.png: no object"):
        resize_dataset(blank, 64, tmp_path / "out2", False, framer(params.resize))
    assert mask.shape == turned.shape[:2]


def test_predict_frames_a_photo_as_training_did():
    torch.manual_seed(0)
    model = build_model(32, embedding_dim=8).eval()
    photos = [_screw(angle)[0] for angle in (10.0, 70.0, 140.0, -30.0, 95.0)]
    settings = BandSettings()
    framed_photos = [framed(p, None, "object_band", settings, "p")[0] for p in photos]
    head = ScoringHead(["softmax", "knn"], "knn", {"knn": KnnSettings(k=2)})
    cam = ("gradcam++", "layer2", "anomalous")
    plain = Detector(model, head, cam, torch.device("cpu"), 8)
    head.fit_scores(
        embed_and_score(
            model, plain_inputs(plain, framed_photos), 8, torch.device("cpu"), False
        ).embeddings
    )
    resize = params_from_dict({"resize": {"framing": "object_band"}}).resize
    framing = Detector(model, head, cam, torch.device("cpu"), 8, resize=resize)
    expected = plain.predict(framed_photos, heatmaps=False)
    got = framing.predict(photos, heatmaps=False)
    pd.testing.assert_frame_equal(got.table, expected.table)
    np.testing.assert_array_equal(got.images, expected.images)
    with pytest.raises(MetricadError, match="image 1: no object"):
        framing.predict([photos[0], np.full((SIDE, SIDE, 3), 200, np.uint8)], heatmaps=False)


def plain_inputs(detector: Detector, photos: list[np.ndarray]) -> torch.Tensor:
    resized = np.stack([resize_rgb(photo, detector.size) for photo in photos])
    return torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous()


def test_a_checkpoint_records_the_framing_predict_uses():
    params = params_from_dict({"resize": {"framing": "object_band", "object_band": {"band": 0.3}}})
    assert resize_of(trained_with(params)).framing == "object_band"
    assert resize_of(trained_with(params)).object_band == BandSettings(band=0.3)
    assert resize_of(trained_with(params_from_dict({}))).framing == "whole"
    auto = params_from_dict({"resize": {"framing": "auto"}})  # the resize stage chose the band
    assert resize_of(trained_with(auto, "object_band")).framing == "object_band"
    assert resize_of({"resize.size": 96}).framing == "whole"  # written before framings


def _disc() -> np.ndarray:
    ys, xs = np.mgrid[0:SIDE, 0:SIDE]
    grey = np.where((ys - 64) ** 2 + (xs - 60) ** 2 < 40**2, 60, 200)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def test_auto_bands_elongated_objects_only():
    screws = [_screw(angle)[0] for angle in (0.0, 35.0, 100.0)]
    assert chosen_framing(screws, 40)[0] == "object_band"
    assert chosen_framing([_disc(), _disc()], 40) == (
        "whole",
        "an object that is not elongated (median elongation 1.00)",
    )
    rng = np.random.default_rng(0)
    plain = rng.integers(90, 110, (SIDE, SIDE, 3), dtype=np.uint8)
    assert chosen_framing([*screws, plain], 40)[0] == "whole"  # one photo without an object
    # A texture with dark grains everywhere: no plain ground, no single object.
    grains = np.repeat(rng.integers(0, 256, (SIDE, SIDE, 1), dtype=np.uint8), 3, axis=2)
    assert chosen_framing([grains] * 3, 40)[0] == "whole"
    stripes = np.full((SIDE, SIDE, 3), 200, np.uint8)
    stripes[:, 8:-8:16] = 40  # parallel dark lines: many blobs, none holding most
    stripes[:, 9:-8:16] = 40
    assert chosen_framing([stripes] * 3, 40)[0] == "whole"
    auto = params_from_dict({"resize": {"framing": "auto"}}).resize
    assert resolved(auto, iter(screws))[0].framing == "object_band"
    whole = params_from_dict({}).resize
    assert resolved(whole, iter([])) == (whole, "set in params")


def test_augment_auto_skips_flips_and_turns_after_a_framing_to_one_pose():
    def augment(framing: str, value: object) -> object:
        params = params_from_dict(
            {"resize": {"framing": framing}, "train": {"augment": value}, "split": {}}
        )
        return settings_for_data(params, n_images=8, real_anomalies=0)[0].augment

    assert augment("object_band", "auto") is False and augment("object_axis", "auto") is False
    assert augment("whole", "auto") is True and augment("object_band", True) is True
    with pytest.raises(MetricadError, match="train.augment must be one of True, False, 'auto'"):
        params_from_dict({"train": {"augment": "sometimes"}})


def test_after_a_framing_to_one_pose_the_crop_is_the_side_and_the_neck_flattens():
    """train.crop after object_band: no random squares (they would move each part of the
    object), the photos resized to the crop's side; model.neck auto follows the crop."""

    def side_neck_crop(framing: str) -> tuple[int, str, int]:
        params = params_from_dict(
            {
                "resize": {"framing": "auto", "size": 192},
                "train": {"crop": 128},
                "model": {"neck": "auto"},
            }
        )
        arch = arch_from_params(params, framing)
        crop = settings_for_data(params, 8, 0, framing)[0].crop
        return arch["input_size"], arch["neck"], crop

    assert side_neck_crop("whole") == (192, "avgpool", 128)
    assert side_neck_crop("object_band") == (128, "flatten", 0)
    plain = params_from_dict({"model": {"neck": "auto"}})
    assert arch_from_params(plain, "whole")["neck"] == "flatten"  # no crop: one input side
