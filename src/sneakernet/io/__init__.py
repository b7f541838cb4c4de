"""The code that touches bytes on disk, besides drive/: the restore destination (tree.py) and the directory
lock (lock.py)."""
