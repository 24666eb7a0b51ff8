"""The families: the GAN and the VAE (their networks, losses and train steps), the interface every family implements,
the dispatch from a variant to its family, the backends a step compiles on, and the custom Keras layer a generator
may use (importable alone: a shipped .keras file loads with it and plain Keras)."""
