"""Benchmarks for pacsindex: synthetic DICOM trees, the seed-design baseline, and ratio reports."""
