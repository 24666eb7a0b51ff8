"""Pieces shared by training, evaluation and the service: latents, grids, manifests."""
