"""The pure core: pods and identity settings in, JSON Patch operations out. No I/O here."""
