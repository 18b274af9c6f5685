"""A Kubernetes API server per sandbox cluster: enough of the real one for kubectl, the python
client, Helm and Istio's charts, with small simulated controllers."""
