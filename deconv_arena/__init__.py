"""The command line, above both the trainer (`training`) and the service (`app`)."""
