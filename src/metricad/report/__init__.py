"""Phase 6, what a person reads: the figures the stages and predict draw (`plots.py`), and
reports over DVC experiments and git revisions (`python -m metricad.compare`): collected from
what DVC and git store (experiments), turned into tables (tables), written as pages (render)."""
