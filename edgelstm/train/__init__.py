"""Fitting models: train, and distill a teacher into a small causal student."""
