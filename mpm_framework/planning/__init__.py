"""`mpm plan`: parameter counts, memory and time of a recipe before launching it."""
