"""The sandbox: a local world speaking GKE v1, Compute v1 and Kubernetes wire protocols.

It stands alone: it imports nothing from `tasks/`, `flows/` or Prefect. The real Google and
Kubernetes clients talk to it exactly as they talk to Google and to GKE clusters.
"""
