"""Spanish (español) language pack for MPM."""
