"""The recipe format: schema, loading with file:line errors, the plan, templates, inputs."""
