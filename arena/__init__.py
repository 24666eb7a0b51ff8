"""The shared layer: the variant table, the operator registry and family facts, latents, the model store's records,
images, the artefact measure, statistics, studies and the readouts the pages and tables share.
It imports neither the trainer (`training`) nor the web service (`app`); both import it."""
