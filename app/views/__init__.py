"""What the pages show, rendered from the shared layer's data: the key figures under each grid, the inline SVG
charts, the findings in words and the About page's tables."""
