"""HTTP API of the centre: routes per resource, shared dependencies."""
