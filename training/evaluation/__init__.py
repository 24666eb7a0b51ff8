"""Evaluation: the project's classifier (features and labels), the sample-quality measures (NumPy and JAX), scoring
a generator into its metrics.json, checkerboard at initialisation, and the training-curves figure."""
