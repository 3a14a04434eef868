"""Measurements: plain functions of a model and its data, knowing nothing of runs.

Margins (:mod:`~marginlab.measure.margins`), log-space gradients
(:mod:`~marginlab.measure.gradient`), KKT certificates (:mod:`~marginlab.measure.kkt`),
rates (:mod:`~marginlab.measure.rates`), reference max-margin solutions
(:mod:`~marginlab.measure.references`), attacks (:mod:`~marginlab.measure.attacks`), the
certified robust radius (:mod:`~marginlab.measure.lipschitz`) and the observers a training
run can switch on (:mod:`~marginlab.measure.observers`).
"""
