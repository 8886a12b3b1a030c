"""DICOMweb (QIDO-RS, WADO-RS, WADO-URI) answers built from the index and the files."""
