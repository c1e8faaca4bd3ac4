"""`data.source: csv`: a list of images in a CSV file (data.root), one row per image:

    path,label,defect,mask_path
    photos/a.jpg,good,,
    photos/b.jpg,anomalous,scratch,masks/b.png

label is good or anomalous; defect names the defect type of an anomalous image (default
"anomalous"); mask_path is optional (the column too). Relative paths are read against the
CSV's folder. No split is given: split.test_fraction / validation_fraction make it (split.py).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from metricad.data.manifest import DEFECT_FREE, SYNTHETIC, source_table
from metricad.data.sources import SOURCES
from metricad.data.sources.listing import check_files, is_image
from metricad.errors import MetricadError
from metricad.params import DataParams

REQUIRED = ("path", "label", "defect")
OPTIONAL = ("mask_path",)
LABELS = {"good": 0, "anomalous": 1}
UNNAMED_DEFECT = "anomalous"
# A defect names folders of outputs (resized images, GradCAM panels).
_DEFECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@SOURCES.register("csv", root="CSV file")
def csv_source(data: DataParams, workspace: Path) -> pd.DataFrame:
    listing = Path(str(data.root))
    if not listing.is_file():
        raise MetricadError(f"data.root: CSV file {listing} does not exist")
    try:
        with listing.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in columns]
            unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
            if missing or unknown:
                raise MetricadError(
                    f"{listing}: columns are {columns}; expected path, label, defect and "
                    f"optionally mask_path"
                    + (f" (missing: {', '.join(missing)})" if missing else "")
                    + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                )
            records = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise MetricadError(f"{listing}: not a readable CSV file ({error})") from None
    if not records:
        raise MetricadError(f"{listing}: CSV file lists no image")

    rows, names, masks, seen = [], set(), {}, {}
    for line, row in records:
        where = f"{listing}, line {line}"
        path = _file(listing, (row.get("path") or "").strip(), where, "path")
        if path in seen:
            raise MetricadError(f"{where}: {path} is listed twice (first on line {seen[path]})")
        seen[path] = line
        label_text = (row.get("label") or "").strip()
        if label_text not in LABELS:
            raise MetricadError(f"{where}: label is {label_text!r}; expected good or anomalous")
        label = LABELS[label_text]
        defect = (row.get("defect") or "").strip()
        if label == 0:
            if defect not in ("", DEFECT_FREE):
                raise MetricadError(f"{where}: a good image has defect {defect!r}; leave it empty")
            defect = DEFECT_FREE
        else:
            defect = defect or UNNAMED_DEFECT
            if not _DEFECT_NAME.fullmatch(defect) or defect in (DEFECT_FREE, SYNTHETIC):
                raise MetricadError(
                    f"{where}: defect {defect!r} cannot name a defect type (letters, digits, "
                    "_ . - ; not good or synthetic)"
                )
        mask_text = (row.get("mask_path") or "").strip()
        if mask_text:
            if label == 0:
                raise MetricadError(f"{where}: a good image has a mask_path; leave it empty")
            masks[path] = _file(listing, mask_text, where, "mask_path")
        name = f"{defect}/{path.stem}"
        number = 1
        while name in names:  # two listed images with one file name
            number += 1
            name = f"{defect}/{path.stem}-{number}"
        names.add(name)
        rows.append((path, name, label, defect, ""))
    if not any(label == 0 for _, _, label, _, _ in rows):
        raise MetricadError(f"{listing}: CSV file lists no good image (label good)")
    check_files([row[0] for row in rows], masks)
    return source_table(rows, masks)


def _file(listing: Path, text: str, where: str, column: str) -> Path:
    """A listed file, relative paths against the CSV's folder; it must be an image."""
    if not text:
        raise MetricadError(f"{where}: {column} is empty")
    path = Path(text)
    if not path.is_absolute():
        path = listing.parent / path
    if not is_image(path):
        reason = "does not exist" if not path.exists() else "is not an image file"
        raise MetricadError(f"{where}: {column} {path} {reason}")
    return path
