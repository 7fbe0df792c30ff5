"""The toy world: MPM's whole experiment on a CPU in minutes (``mpm demo``).

A plugin like any other: it registers the ``demo`` command through
``mpm_register_commands`` and builds its stacks through the public
composition API (``mpm_framework.composition``) from the components other
plugins register (a Llama pivot, a CLIP tower, a UNet decoder for ``--paint``).
See README.md in this package.
"""
