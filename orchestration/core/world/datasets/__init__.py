"""Public uplift datasets, loaded and mapped into the raw data contract.

Real randomized campaigns are the check that the synthetic world cannot give: the learners and
metrics are evaluated on data nobody here generated, with the published protocol of each dataset,
so the figures can be compared with the literature. Each module fetches its dataset into a local
cache (never committed), validates it, evaluates the learners on the dataset's protocol and can
write it as the raw contract tables so the whole pipeline runs on it.

* :mod:`orchestration.core.world.datasets.hillstrom`: the MineThatData e-mail campaign (Hillstrom 2008).
"""
