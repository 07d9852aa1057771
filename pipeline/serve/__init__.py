"""The local web app of `photoedit serve`: photo editor, folder mode, GAN explorer, paint and dissect."""
