"""Photo files: reading and writing (EXIF, ICC, alpha, 16-bit; no torch), photo folders,
and the batch runner that edits them."""
