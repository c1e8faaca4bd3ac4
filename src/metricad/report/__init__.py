"""Reports over DVC experiments and git revisions (`python -m metricad.compare`): collected
from what DVC and git store (experiments), turned into tables (tables), written as pages
(render)."""
