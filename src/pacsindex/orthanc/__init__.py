"""The practice's Orthanc PACS: settings, connection tests and sends."""
