"""Stage `prepare`: the images `data.*` points at (the demo, an MVTec AD copy, a folder or a
CSV list) -> the manifest, with the seeded train / validation / test split."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import warnings

from metricad.data.manifest import write_manifest
from metricad.data.sources import SOURCES, source_root
from metricad.data.split import split_manifest, split_warnings
from metricad.errors import MetricadError, run_stage
from metricad.files import fresh_folder, write_json
from metricad.params import load_params
from metricad.paths import METRICS_DIR, PREPARED_DIR, PREPARED_MANIFEST


def main() -> None:
    params = load_params(without_torch=True)
    data, split = params.data, params.split
    source = SOURCES[data.source]
    owned = PREPARED_DIR.resolve()
    root = source_root(data)
    given = None if root is None else root.resolve()
    if given is not None and (given == owned or owned in given.parents):
        raise MetricadError(
            f"params: data.root: {data.root} lies inside {PREPARED_DIR}, the folder `prepare` "
            "empties on every run; keep your data set outside the pipeline's data/ folders"
        )
    fresh_folder(PREPARED_DIR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scan = source(data, PREPARED_DIR)
    for warning in caught:
        print(f"warning: {warning.message}")
    fraction = split.anomalous_train_fraction
    manifest = split_manifest(
        scan, fraction, split.seed, split.validation_fraction, split.test_fraction
    )
    for warning in split_warnings(manifest, fraction):
        print(f"warning: {warning}")
    write_manifest(manifest, PREPARED_MANIFEST)

    counts = manifest.groupby(["split", "defect"]).size()
    anomalous = manifest[manifest["label"] == 1]
    write_json(
        METRICS_DIR / "data.json",
        {
            "images": {
                part: {d: int(n) for d, n in counts[part].items()}
                for part in ("train", "validation", "test")
                if part in counts.index
            },
            "anomalous_without_mask": int((anomalous["mask_path"] == "").sum()),
        },
    )


if __name__ == "__main__":
    run_stage(main)
