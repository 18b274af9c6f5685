"""The sandbox's stand-ins for what Istio's components know and answer (istiod first).

Models read cluster state through a small protocol and stay free of HTTP; thin backends serve
them where the real component is reached (istiod's monitoring port behind the API's service proxy,
and through a port-forward to its pod).
"""
