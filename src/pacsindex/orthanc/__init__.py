"""The practice's Orthanc PACS: settings, connection tests (`client`) and sends kept in the index (`sends`)."""
