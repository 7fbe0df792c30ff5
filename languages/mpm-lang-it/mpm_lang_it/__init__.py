"""Italian (italiano) language pack for MPM."""
