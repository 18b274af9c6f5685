"""A Kubernetes API server per sandbox cluster: enough of the real one for kubectl, the python
client, Helm and Istio's charts, with small simulated controllers.

Laid out as moto lays out a service, each group importing only the groups before it:
root (registry, status: the errors, auth, rbac: the authorizer) <- schema <- store <- controllers <- http <- fleet,
the root module that starts one server per cluster and is what the rest of the sandbox imports.
tests/sandbox/test_kube_layout.py holds that order.
"""
