"""Serving: predicting with a trained model folder, exporting it, and the `ser` command.

Needs only a model folder, never training code: imports ser.features and ser.model, never
ser.training.
"""
