"""Builders that assemble components from settings; ``runtime.Platform`` uses them."""
