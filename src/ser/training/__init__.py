"""Training: fitting models (ensembles, the statistics member) and scoring predictions.

Used by the train and evaluate stages; ser.serve never imports it.
"""
