{{- define "gateway.name" -}}
{{- .Values.name | default .Release.Name -}}
{{- end }}
{{- define "gateway.selectorLabels" -}}
app: {{ include "gateway.name" . }}
istio: {{ include "gateway.name" . | trimPrefix "istio-" }}
{{- end }}
{{- /* Istio's labels, the network label of an east-west gateway, then the user's `labels` (they win). */ -}}
{{- define "gateway.labels" -}}
{{- $labels := fromYaml (include "gateway.selectorLabels" .) }}
{{- with .Values.networkGateway }}
{{- $_ := set $labels "topology.istio.io/network" . }}
{{- end }}
{{- with .Values.revision }}
{{- $_ := set $labels "istio.io/rev" . }}
{{- end }}
{{- $_ := set $labels "app.kubernetes.io/name" (include "gateway.name" .) }}
{{- $_ := set $labels "app.kubernetes.io/instance" .Release.Name }}
{{- $_ := set $labels "app.kubernetes.io/part-of" "istio" }}
{{- $_ := set $labels "app.kubernetes.io/version" .Chart.AppVersion }}
{{- $_ := set $labels "app.kubernetes.io/managed-by" .Release.Service }}
{{- $_ := set $labels "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version) }}
{{- toYaml (mergeOverwrite $labels .Values.labels) }}
{{- end }}
{{- define "gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "gateway.name" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end }}
