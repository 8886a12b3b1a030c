"""The practice's Orthanc PACS: settings, connection tests (`client`), sends kept in the index (`sends`)."""
