# The image of the `nightly-k8s` deployment (prefect.yaml): the flows, a pinned helm and, for GKE,
# gke-gcloud-auth-plugin (the kubeconfig's users run it). Not built by the tests (no Docker here).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends curl gnupg ca-certificates \
 && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor -o /usr/share/keyrings/cloud.google.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.google.com/apt cloud-sdk main" > /etc/apt/sources.list.d/google-cloud-sdk.list \
 && apt-get update && apt-get install -y --no-install-recommends google-cloud-cli-gke-gcloud-auth-plugin \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/meshwright
COPY . .
RUN pip install --no-cache-dir -c constraints.txt . prefect-kubernetes && python scripts/fetch_helm.py --bin /usr/local/bin
