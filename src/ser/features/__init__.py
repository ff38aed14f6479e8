"""Features: decoding audio, turning a clip into a feature matrix, augmentation, feature stores.

One clip is featurised here for featurize, augment and predict alike. Imports from ser.data
and the top-level helpers only, never from ser.model, ser.training or ser.serve.
"""
