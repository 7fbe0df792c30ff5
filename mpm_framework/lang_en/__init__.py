"""English, the pivot language, ships inside the core."""
