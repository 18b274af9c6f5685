"""meshwright: a multicluster Istio mesh on GKE as a Prefect workflow (library layer).

Nothing in this package imports from `flows/` or `tasks/`.
"""

__version__ = "0.1.0"
