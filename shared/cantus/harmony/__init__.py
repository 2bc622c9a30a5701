"""Harmony: chords for a melody, bar by bar, and the accompaniment that plays them.

``vocabulary`` (chord classes of the model), ``features`` (what the model sees of a
melody, per beat), ``context`` (one model request: a window of beats), ``model`` (the GRU
and its batched decoding), ``serving`` (behind Triton, and offline), ``client`` (the
service's Triton client), ``dataset`` and ``training`` (``cantus train harmony``), ``hmm``
and ``rules`` (the baselines; the rules also stand in when the model cannot answer),
``voicing`` (chorale four-part writing, piano voicings, bass lines).
"""
