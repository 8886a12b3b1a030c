"""Firebird catalogs of other PACS programs as a source of file records."""
