"""The index database: the only package that opens it (connect, schema, writer, queries, search)."""
