"""Stacks: composed models (chat: image -> text; paint: text -> image)."""
