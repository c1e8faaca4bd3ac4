"""Stage `resize`: each photo framed (resize.framing: the photo as it is, or the object turned to
one pose; auto: chosen from the good training photos and recorded) and resized to resize.size
(train.crop's side after a framing to one pose: data/framing resized_side), images
area/bilinear, masks framed alike and nearest."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
from metricad.data.framing import framer, resized_side, resolved
from metricad.data.images import load_rgb, resize_dataset
from metricad.data.manifest import read_manifest, write_manifest
from metricad.errors import run_stage
from metricad.files import fresh_folder, write_json
from metricad.params import load_params
from metricad.paths import PREPARED_MANIFEST, RESIZED_DIR, RESIZED_FRAMING, RESIZED_MANIFEST


def main() -> None:
    params = load_params(without_torch=True)
    manifest = read_manifest(PREPARED_MANIFEST)
    good = manifest[(manifest["split"] == "train") & (manifest["label"] == 0)]
    resize, why = resolved(params.resize, (load_rgb(path) for path in good["path"]))
    print(f"resize: framing {resize.framing} ({why})")
    side = resized_side(params, resize.framing)
    resized = resize_dataset(manifest, side, fresh_folder(RESIZED_DIR), frame=framer(resize))
    write_manifest(resized, RESIZED_MANIFEST)
    write_json(RESIZED_FRAMING, {"framing": resize.framing, "why": why})


if __name__ == "__main__":
    run_stage(main)
