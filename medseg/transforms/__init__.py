"""Spatial and intensity transforms, invertible preprocessing, augmentation, synthesis."""
