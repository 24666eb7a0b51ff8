"""Serving the generators, one stage per file, in the order a request walks them (as LitServe's setup, decode,
predict and encode):

- `setup.py`: the registry — finds every model in the store, loads it, checks its batch shapes, gives it a decoder;
  `catalogue.py` holds each model's catalogue record (manifest, metrics, statistics, status), `decoder.py` its
  compiled calls, serving shapes and batcher, `shapes.py` the shape planning and the exactness check.
- `specs.py` (decode): a request's query model turns itself into a spec, a small union of frozen dataclasses.
- `predict.py`: the cache, or the batcher's model call on a decode thread, then the render beside it.
- `encode.py`: the one writer of the PNG or JSON response and its headers.

Only `encode.py` knows the web framework (tests/test_grid_specs.py); app/api/ holds the routes that call the stages.
"""
