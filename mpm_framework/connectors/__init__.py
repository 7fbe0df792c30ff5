"""Built-in connectors, shipped as a default plugin."""
