"""Registers ``mpm demo`` (torch-free: the command imports the experiment when it runs)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_commands(cli):
    from .demo_cmd import demo

    cli.add_command(demo)
