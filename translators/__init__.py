"""pix2pixHD-style image-to-image translators: networks, training, bundles, inference.

translators/ never imports pipeline/ or gan/: pairs arrive as a dataset.
"""
