"""The model family: its configuration, the Keras builders, the external-state step model, its cost."""
