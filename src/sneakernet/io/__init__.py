"""The code that touches bytes on disk, besides drive/: the restore destination (tree.py), the directory
lock (lock.py) and the source a pack reads (source.py)."""
