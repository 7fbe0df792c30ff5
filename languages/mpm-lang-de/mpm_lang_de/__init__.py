"""German (Deutsch) language pack for MPM."""
