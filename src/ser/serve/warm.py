"""Imported first by the server process that ``ser predict``'s workers fork from
(predict_files(fork_server=True); ser.parallel.map_clips ``preload``): runs the feature
code once, so every worker starts with librosa's modules imported and its compiled
functions loaded, instead of loading them itself. Importing it takes seconds."""

from ser.params import FeatureParams
from ser.serve.recording import warm_up

# Any feature settings load the same modules; these are the default model's.
warm_up(
    FeatureParams(
        kind="mfcc",
        sample_rate=16000,
        n_mfcc=40,
        deltas=True,
        mels=64,
        prosody=True,
        n_fft=512,
        hop_length=160,
        window_seconds=3.0,
        offset_seconds=0.0,
        normalize="speaker",
        pad="repeat",
        n_jobs=1,
        level_db=None,
    )
)
