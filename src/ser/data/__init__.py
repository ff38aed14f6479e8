"""Data: corpora, downloads, the manifest, the actor split, label groupings and training rows.

The first layer: it reads and writes recordings and tables, and imports nothing from
ser.features, ser.model, ser.training or ser.serve.
"""
