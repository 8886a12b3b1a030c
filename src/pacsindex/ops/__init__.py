"""Operations: what keeps a running practice's pacsindex current and POPIA-ready without anyone pressing
a button. The indexing schedule (`scheduler`), retention purges (`retention`), access reports and the audit
export (`reports`, `pdf`), backups (`backup`), health (`health`) and the Windows service (`winservice`).

A layer of its own between `web`/`cli` and the features: a purge, a backup or an access report reads the
index, the share store and the audit log together, which no feature may do (features never import each
other).
"""
