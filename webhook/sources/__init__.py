"""Where identity settings come from. Sources do I/O and publish immutable snapshots; never patches."""
