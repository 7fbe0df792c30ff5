"""Swahili (Kiswahili) language pack for MPM."""
