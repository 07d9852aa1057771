"""StyleGAN2-style generator and discriminator: networks, training, sampling, import.

gan/ knows only about the GAN's own weights; it never imports pipeline/ or translators/.
"""
