"""What the cluster does after a write (simulated controllers); imports root, schema, store, never http."""
