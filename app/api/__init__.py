"""The HTTP routes: pages, generation, downloads, the model catalogue, rating and its admin, health."""
