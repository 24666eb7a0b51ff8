"""The shared layer: the variant table and family facts, latents, manifests, images, custom layers, statistics and
figure helpers. It imports neither the trainer (`training`) nor the web service (`app`); both import it."""
