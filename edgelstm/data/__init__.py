"""Sensor data in, model-ready windows out: readers, windowing, normalization, splits, augmentation, sample data."""
