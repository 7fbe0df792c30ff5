"""Component contracts. Import the torch-based ones from their modules:
``mpm_framework.contracts.llm`` etc.; ``prompt``, ``language`` and
``toy_grammar`` (the optional toy-world capability of a language pack) are
torch-free."""
