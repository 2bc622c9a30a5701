"""Quality evaluations of the models against baselines (``cantus eval ...``).

``cantus.eval.melody``: held-out likelihood of the melody transformer against an n-gram and an
LSTM baseline, and musical statistics of generated melodies (key, metre, cadence, pitch and
interval distributions). Its parts: ``melody_likelihood``, ``melody_sampling``,
``melody_scoring`` and ``melody_report``.

``cantus eval realness`` (``realness_run``): generated melodies against held-out real tunes
over the same window: the features a listener hears (``melody_features``), their MGEval
overlap (``melody_overlap``), a classifier's cross-validated accuracy with a real-vs-real
control (``realness``), key agreement per key and repetition structure (``structure``), put
together by ``realness_report`` for melodies from any source.

``cantus.eval.harmony``: held-out chorales harmonised by the model, Bach, the rule-based
harmoniser and an HMM, scored with the metrics of Yeh et al. 2020.
"""
