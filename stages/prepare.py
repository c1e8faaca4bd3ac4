"""Stage `prepare`: the image set (synthetic or the user's MVTec AD copy) -> manifest with split."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import warnings
from pathlib import Path

from metricad import demo_data
from metricad.errors import MetricadError, run_stage
from metricad.files import fresh_folder, write_json
from metricad.layout import scan_mvtec, split_manifest, split_warnings, write_manifest
from metricad.params import load_params
from metricad.paths import METRICS_DIR, PREPARED_DIR, PREPARED_MANIFEST, SYNTHETIC_ROOT


def main() -> None:
    params = load_params()
    data = params.data
    owned = PREPARED_DIR.resolve()
    given = Path(data.root).resolve() if data.source == "mvtec" else None
    if given is not None and (given == owned or owned in given.parents):
        raise MetricadError(
            f"params: data.root: {data.root} lies inside {PREPARED_DIR}, the folder `prepare` "
            "empties on every run; keep your data set outside the pipeline's data/ folders"
        )
    fresh_folder(PREPARED_DIR)
    if data.source == "synthetic":
        demo_data.generate(
            SYNTHETIC_ROOT, data.category, data.synthetic.seed, data.synthetic.image_size
        )
        root = SYNTHETIC_ROOT
    else:
        root = Path(data.root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scan = scan_mvtec(root, data.category)
    for warning in caught:
        print(f"warning: {warning.message}")
    fraction = params.split.anomalous_train_fraction
    manifest = split_manifest(scan, fraction, params.split.seed, params.split.validation_fraction)
    for warning in split_warnings(manifest, fraction):
        print(f"warning: {warning}")
    write_manifest(manifest, PREPARED_MANIFEST)

    counts = manifest.groupby(["split", "defect"]).size()
    anomalous = manifest[manifest["label"] == 1]
    write_json(
        METRICS_DIR / "data.json",
        {
            "images": {
                split: {d: int(n) for d, n in counts[split].items()}
                for split in ("train", "validation", "test")
                if split in counts.index
            },
            "anomalous_without_mask": int((anomalous["mask_path"] == "").sum()),
        },
    )


if __name__ == "__main__":
    run_stage(main)
