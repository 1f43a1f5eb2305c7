"""The OpenAI-compatible gateway: app (HTTP), pipeline (ordered steps), providers, routing,
resilience, limits, costs and the ledger writer."""
