{{- define "istiod.remote" -}}
{{- if or (eq .Values.profile "remote") .Values.istiodRemote.enabled -}}true{{- end -}}
{{- end }}
{{- /* The revision as labels and REVISION carry it: "default" when none is set. */ -}}
{{- define "istiod.rev" -}}
{{- .Values.revision | default "default" -}}
{{- end }}
{{- /* istiod, or istiod-<revision>: Istio's charts suffix every per-revision name so (Deployment,
Service, ServiceAccount, Role, HPA, PDB; istio-discovery/templates/*.yaml `istiod{{- if not (eq
.Values.revision "") }}-{{ .Values.revision }}{{- end }}`). */ -}}
{{- define "istiod.name" -}}
istiod{{ with .Values.revision }}-{{ . }}{{ end }}
{{- end }}
{{- /* The labels selecting this revision's istiod pods: a revision's Service, Deployment and PDB
select `app` and `istio.io/rev`; the default revision's select `istio: pilot`, a label only its
pods carry ("This avoids default deployment picking the canary", istio-discovery/templates/service.yaml). */ -}}
{{- define "istiod.selector" -}}
{{- if .Values.revision -}}
app: istiod
istio.io/rev: {{ .Values.revision | quote }}
{{- else -}}
istio: pilot
{{- end -}}
{{- end }}
{{- define "istiod.clusterName" -}}
{{- .Values.global.multiCluster.clusterName | default "Kubernetes" -}}
{{- end }}
{{- define "istiod.labels" -}}
app: istiod
istio.io/rev: {{ include "istiod.rev" . | quote }}
install.operator.istio.io/owning-resource: unknown
operator.istio.io/component: Pilot
release: {{ .Release.Name }}
app.kubernetes.io/name: istiod
app.kubernetes.io/part-of: istio
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
{{- /* One injector webhook (mutatingwebhook.yaml's "core"): istiod-<revision> at injectionPath, or
istiodRemote.injectionURL. `caBundle` is false for a revision tag's webhooks, which Istio renders
without one (revision-tags-mwc.yaml). */ -}}
{{- define "istiod.injectorWebhook" -}}
{{- $v := .root.Values }}
{{- $client := dict "service" (dict "name" (include "istiod.name" .root) "namespace" .root.Release.Namespace "path" $v.istiodRemote.injectionPath "port" 443) }}
{{- if $v.istiodRemote.injectionURL }}
{{- $client = dict "url" $v.istiodRemote.injectionURL }}
{{- end }}
{{- if and .caBundle $v.istiodRemote.injectionCABundle }}
{{- $_ := set $client "caBundle" $v.istiodRemote.injectionCABundle }}
{{- end }}
{{- $hook := dict
  "name" (printf "%ssidecar-injector.istio.io" .prefix)
  "clientConfig" $client
  "rules" (list (dict "operations" (list "CREATE") "apiGroups" (list "") "apiVersions" (list "v1") "resources" (list "pods")))
  "sideEffects" "None"
  "failurePolicy" "Fail"
  "reinvocationPolicy" $v.sidecarInjectorWebhook.reinvocationPolicy
  "admissionReviewVersions" (list "v1")
  "namespaceSelector" .namespaceSelector
  "objectSelector" .objectSelector }}
{{- toYaml (list $hook) }}
{{- end }}
{{- /* The webhooks selecting pods for `rev` (a revision, or a tag): namespace label istio.io/rev=<rev>,
or the pod label; and, for the default revision or the tag "default", istio-injection=enabled and
sidecar.istio.io/inject=true (plus every unlabelled namespace with enableNamespacesByDefault). */ -}}
{{- define "istiod.injectorWebhooks" -}}
{{- $notFalse := dict "key" "sidecar.istio.io/inject" "operator" "NotIn" "values" (list "false") }}
{{- $noRev := dict "key" "istio.io/rev" "operator" "DoesNotExist" }}
{{- $noInjection := dict "key" "istio-injection" "operator" "DoesNotExist" }}
{{- $isRev := dict "key" "istio.io/rev" "operator" "In" "values" (list .rev) }}
{{- include "istiod.injectorWebhook" (dict "root" .root "caBundle" .caBundle "prefix" "rev.namespace."
    "namespaceSelector" (dict "matchExpressions" (list $isRev $noInjection))
    "objectSelector" (dict "matchExpressions" (list $notFalse))) }}
{{ include "istiod.injectorWebhook" (dict "root" .root "caBundle" .caBundle "prefix" "rev.object."
    "namespaceSelector" (dict "matchExpressions" (list $noRev $noInjection))
    "objectSelector" (dict "matchExpressions" (list $notFalse $isRev))) }}
{{- if .legacy }}
{{ include "istiod.injectorWebhook" (dict "root" .root "caBundle" .caBundle "prefix" "namespace."
    "namespaceSelector" (dict "matchExpressions" (list (dict "key" "istio-injection" "operator" "In" "values" (list "enabled"))))
    "objectSelector" (dict "matchExpressions" (list $notFalse))) }}
{{ include "istiod.injectorWebhook" (dict "root" .root "caBundle" .caBundle "prefix" "object."
    "namespaceSelector" (dict "matchExpressions" (list $noInjection $noRev))
    "objectSelector" (dict "matchExpressions" (list (dict "key" "sidecar.istio.io/inject" "operator" "In" "values" (list "true")) $noRev))) }}
{{- if .root.Values.sidecarInjectorWebhook.enableNamespacesByDefault }}
{{ include "istiod.injectorWebhook" (dict "root" .root "caBundle" .caBundle "prefix" "auto."
    "namespaceSelector" (dict "matchExpressions" (list $noInjection $noRev (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" (list "kube-system" "kube-public" "kube-node-lease" "local-path-storage"))))
    "objectSelector" (dict "matchExpressions" (list (dict "key" "sidecar.istio.io/inject" "operator" "DoesNotExist") $noRev))) }}
{{- end }}
{{- end }}
{{- end }}
