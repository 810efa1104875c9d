"""The composition root: builds the core once, runs it with its adapters, health and supervision."""
