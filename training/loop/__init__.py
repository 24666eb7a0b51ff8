"""The epoch loop: a run's configuration, its data, the loop with its checkpoints and atomic install, the vmapped
trainer of k seeds at once, and the provenance every manifest records."""
