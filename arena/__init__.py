"""The shared layer: the variant table, the operator registry and family facts, latents, manifests, images, the
artefact measure, statistics, studies and figure helpers.
It imports neither the trainer (`training`) nor the web service (`app`); both import it."""
