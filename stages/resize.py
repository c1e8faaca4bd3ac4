"""Stage `resize`: each photo framed (resize.framing: the photo as it is, or the object turned to
one pose) and resized to resize.size, images area/bilinear, masks framed alike and nearest."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
from metricad.data.framing import framer
from metricad.data.images import resize_dataset
from metricad.data.manifest import read_manifest, write_manifest
from metricad.errors import run_stage
from metricad.files import fresh_folder
from metricad.params import load_params
from metricad.paths import PREPARED_MANIFEST, RESIZED_DIR, RESIZED_MANIFEST


def main() -> None:
    params = load_params()
    manifest = read_manifest(PREPARED_MANIFEST)
    resized = resize_dataset(
        manifest, params.resize.size, fresh_folder(RESIZED_DIR), frame=framer(params.resize)
    )
    write_manifest(resized, RESIZED_MANIFEST)


if __name__ == "__main__":
    run_stage(main)
