{{- define "istiod.remote" -}}
{{- if or (eq .Values.profile "remote") .Values.istiodRemote.enabled -}}true{{- end -}}
{{- end }}
{{- define "istiod.rev" -}}
{{- .Values.revision | default "default" -}}
{{- end }}
{{- define "istiod.clusterName" -}}
{{- .Values.global.multiCluster.clusterName | default "Kubernetes" -}}
{{- end }}
{{- define "istiod.labels" -}}
app: istiod
istio.io/rev: {{ include "istiod.rev" . }}
install.operator.istio.io/owning-resource: unknown
operator.istio.io/component: Pilot
release: {{ .Release.Name }}
app.kubernetes.io/name: istiod
app.kubernetes.io/part-of: istio
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
{{- define "istiod.injectionPath" -}}
{{- if include "istiod.remote" . -}}{{ .Values.istiodRemote.injectionPath }}{{- else -}}/inject{{- end -}}
{{- end }}
