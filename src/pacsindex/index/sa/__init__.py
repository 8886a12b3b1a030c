"""South African enrichment of index rows: ID numbers, medical aids, hospitals."""
