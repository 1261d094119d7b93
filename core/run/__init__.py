"""Running recipes: the engine's public verbs, one run's loop, its schedule, reruns."""
