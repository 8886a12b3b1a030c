"""Where archive files live and how to open them read-only: local/UNC, file lists, DICOMDIR, SMB, catalogs."""
