"""Offline jobs: train the report's four generators and evaluate them."""
