"""Model backends: adapters implementing `core.provider.Provider`."""
