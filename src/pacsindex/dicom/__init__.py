"""One file's bytes to a header record: the fast path, the pydicom fallback, JPEG 2000 sniffing."""
