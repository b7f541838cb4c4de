"""The drive layer: the only code that writes or reads the files of a drive (segments, manifest, B3SUMS,
drive.json and the shipment's catalog)."""
