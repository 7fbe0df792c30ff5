"""The ``mpm`` command line. Modules here import only click at top level."""
