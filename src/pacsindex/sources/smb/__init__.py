"""Direct SMB access to the NAS: connections, readers, the saved NAS settings."""
