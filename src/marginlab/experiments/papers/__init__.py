"""One module per paper: ``reproduce(study)`` runs its experiments at ``study.scale`` and
records its claims (see :class:`marginlab.experiments.study.Study`)."""
