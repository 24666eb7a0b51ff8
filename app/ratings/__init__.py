"""Rating without the web: rater state, gold images, which task comes next, and the results analysis."""
