"""Scoring any model form on windows, and the float-vs-quantized accuracy report."""
