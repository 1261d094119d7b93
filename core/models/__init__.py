"""Model calls: the provider port, the hub of providers, routing, the caller."""
