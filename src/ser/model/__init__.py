"""Model: the Keras architectures and layers, a model folder on disk, and running a model
(class probabilities, per-speaker moments).

What training and prediction share. Never imports ser.training or ser.serve.
"""
