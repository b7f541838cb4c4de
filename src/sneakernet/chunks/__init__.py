"""The chunk stream: its vocabulary (stream.py), the chunker that cuts files into chunks, and the bounded pipeline
that encodes them in order. Pure logic on bytes it is handed: no file I/O."""
