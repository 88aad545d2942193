"""The Starlette REST layer: one module per feature."""
