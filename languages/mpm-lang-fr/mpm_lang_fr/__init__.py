"""French (français) language pack for MPM."""
