"""Chinese (中文, simplified) language pack for MPM."""
