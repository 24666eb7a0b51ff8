"""Offline jobs: train every variant of the table (arena/variants.py), evaluate it, export it to ONNX, import a
generator from elsewhere, and run sweeps of replicate seeds and studies."""
