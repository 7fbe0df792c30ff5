"""Portuguese (português) language pack for MPM."""
