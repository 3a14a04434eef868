"""Run directories: the store that writes them (:mod:`~marginlab.runs.store`), a run opened
from one (:mod:`~marginlab.runs.run`) and the checkpoint specs that pick a checkpoint
(:mod:`~marginlab.runs.checkpoint_spec`). Results computed from runs are
:mod:`marginlab.results`."""
