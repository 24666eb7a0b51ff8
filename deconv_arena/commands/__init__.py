"""The command line's groups: training, the stored models, the service, the generated documentation."""
