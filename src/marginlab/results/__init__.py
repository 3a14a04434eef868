"""Typed result records of runs, each owning its file, and the functions that compute them.

- :mod:`marginlab.results.kkt`: :func:`~marginlab.results.kkt.kkt_along_training` returns a
  :class:`~marginlab.results.kkt.KKTTable` (``kkt.json``);
- :mod:`marginlab.results.robustness`:
  :func:`~marginlab.results.robustness.attack_along_training` returns a
  :class:`~marginlab.results.robustness.RobustnessReport` (``robustness-*.json``);
- :mod:`marginlab.results.reference`: :func:`~marginlab.results.reference.compare_reference`
  returns a :class:`~marginlab.results.reference.ReferenceComparison` (``reference-*.json``);
- :mod:`marginlab.results.collect`: everything a run holds, for figures and the report.

Each record has ``to_json``/``from_json`` with a version field, ``save(run)`` and
``load(path)``; the command line, the plots and the report read result files through them.
"""
