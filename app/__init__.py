"""The service: serving trained generators (serving/), the pages and the JSON API (api/, views/), rating with its
vote store (ratings/, store/), and what they share (core/)."""
