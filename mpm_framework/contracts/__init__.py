"""Component contracts. Import the torch-based ones from their modules:
``mpm_framework.contracts.llm`` etc.; ``prompt`` and ``language`` are torch-free."""
