"""The chunk stream: its vocabulary (stream.py), the chunker that cuts files into chunks, the bounded pipeline that
encodes them in order, and a chunk's encoding (compress.py: zstd or a stored frame, and the bomb-safe decode). Pure
logic on bytes it is handed: no file I/O."""
