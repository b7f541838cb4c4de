"""The code that touches bytes on disk, besides drive/: atomic and durable writes (atomic.py), the restore
destination (tree.py), the directory lock (lock.py) and the source a pack reads (source.py)."""
