"""Interchange: generators in and out — Keras and ONNX import, the ONNX export the service runs, the pack of runs
for the trip back from a GPU machine, and the rating's shipped data (the gold-noise images, the real digits of
"real or generated?" tasks)."""
