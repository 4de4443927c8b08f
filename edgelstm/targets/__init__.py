"""Target profiles (device-safe parsing) and checking a model file against one (host side)."""
