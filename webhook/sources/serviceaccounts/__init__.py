"""ServiceAccount identities: the store, annotations, the file, the watch, the lookup, ConfigMap mode."""
