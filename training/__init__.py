"""Offline jobs, in five rooms: the families (GAN, VAE) and the epoch loop that trains every variant of the table
(arena/variants.py), evaluation, interchange (import a generator from elsewhere, export to ONNX) and sweeps of
replicate seeds and studies."""
