{{/*
Spec schemas of the Istio kinds, written from Istio's API reference (istio.io/latest/docs/reference/config).
The kinds the mesh uses (Gateway, VirtualService, DestinationRule, ServiceEntry, PeerAuthentication,
AuthorizationPolicy) are spelled out; the others keep their spec as given. Like Istio's own CRDs, the
schemas are structural: an unknown field in a spelled-out part is pruned by the API server.
*/}}
{{- define "base.schema.stringList" -}}
type: array
items:
  type: string
{{- end }}
{{- define "base.schema.stringMap" -}}
type: object
additionalProperties:
  type: string
{{- end }}
{{- define "base.schema.open" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
{{- end }}
{{- define "base.schema.openList" -}}
type: array
items:
  type: object
  x-kubernetes-preserve-unknown-fields: true
{{- end }}
{{- define "base.schema.workloadSelector" -}}
type: object
properties:
  matchLabels:
    {{- include "base.schema.stringMap" . | nindent 4 }}
{{- end }}
{{- define "base.schema.portSelector" -}}
type: object
properties:
  number:
    type: integer
    minimum: 0
    maximum: 4294967295
{{- end }}

{{- define "base.schema.Gateway" -}}
description: 'Configuration affecting edge load balancer. See more details at: https://istio.io/docs/reference/config/networking/gateway.html'
type: object
properties:
  selector:
    {{- include "base.schema.stringMap" . | nindent 4 }}
  servers:
    type: array
    items:
      type: object
      required: [port, hosts]
      properties:
        bind:
          type: string
        defaultEndpoint:
          type: string
        hosts:
          {{- include "base.schema.stringList" . | nindent 10 }}
        name:
          type: string
        port:
          type: object
          required: [number, protocol, name]
          properties:
            name:
              type: string
            number:
              type: integer
              minimum: 0
              maximum: 4294967295
            protocol:
              type: string
            targetPort:
              type: integer
              minimum: 0
              maximum: 4294967295
        tls:
          type: object
          properties:
            caCertificates:
              type: string
            caCrl:
              type: string
            cipherSuites:
              {{- include "base.schema.stringList" . | nindent 14 }}
            credentialName:
              type: string
            credentialNames:
              {{- include "base.schema.stringList" . | nindent 14 }}
            httpsRedirect:
              type: boolean
            maxProtocolVersion:
              type: string
              enum: [TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2, TLSV1_3]
            minProtocolVersion:
              type: string
              enum: [TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2, TLSV1_3]
            mode:
              type: string
              enum: [PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL]
            privateKey:
              type: string
            serverCertificate:
              type: string
            subjectAltNames:
              {{- include "base.schema.stringList" . | nindent 14 }}
            verifyCertificateHash:
              {{- include "base.schema.stringList" . | nindent 14 }}
            verifyCertificateSpki:
              {{- include "base.schema.stringList" . | nindent 14 }}
{{- end }}

{{- define "base.schema.routeDestination" -}}
type: object
required: [host]
properties:
  host:
    type: string
  port:
    {{- include "base.schema.portSelector" . | nindent 4 }}
  subset:
    type: string
{{- end }}

{{- define "base.schema.VirtualService" -}}
description: 'Configuration affecting label/content routing, sni routing, etc. See more details at: https://istio.io/docs/reference/config/networking/virtual-service.html'
type: object
properties:
  exportTo:
    {{- include "base.schema.stringList" . | nindent 4 }}
  gateways:
    {{- include "base.schema.stringList" . | nindent 4 }}
  hosts:
    {{- include "base.schema.stringList" . | nindent 4 }}
  http:
    {{- include "base.schema.openList" . | nindent 4 }}
  tcp:
    {{- include "base.schema.openList" . | nindent 4 }}
  tls:
    type: array
    items:
      type: object
      required: [match]
      properties:
        match:
          type: array
          items:
            type: object
            required: [sniHosts]
            properties:
              destinationSubnets:
                {{- include "base.schema.stringList" . | nindent 16 }}
              gateways:
                {{- include "base.schema.stringList" . | nindent 16 }}
              port:
                type: integer
                minimum: 0
                maximum: 4294967295
              sniHosts:
                {{- include "base.schema.stringList" . | nindent 16 }}
              sourceLabels:
                {{- include "base.schema.stringMap" . | nindent 16 }}
              sourceNamespace:
                type: string
        route:
          type: array
          items:
            type: object
            required: [destination]
            properties:
              destination:
                {{- include "base.schema.routeDestination" . | nindent 16 }}
              weight:
                type: integer
                format: int32
{{- end }}

{{- define "base.schema.DestinationRule" -}}
description: 'Configuration affecting load balancing, outlier detection, etc. See more details at: https://istio.io/docs/reference/config/networking/destination-rule.html'
type: object
required: [host]
properties:
  exportTo:
    {{- include "base.schema.stringList" . | nindent 4 }}
  host:
    type: string
  subsets:
    type: array
    items:
      type: object
      required: [name]
      properties:
        labels:
          {{- include "base.schema.stringMap" . | nindent 10 }}
        name:
          type: string
        trafficPolicy:
          {{- include "base.schema.open" . | nindent 10 }}
  trafficPolicy:
    {{- include "base.schema.open" . | nindent 4 }}
  workloadSelector:
    {{- include "base.schema.workloadSelector" . | nindent 4 }}
{{- end }}

{{- define "base.schema.ServiceEntry" -}}
description: 'Configuration affecting service registry. See more details at: https://istio.io/docs/reference/config/networking/service-entry.html'
type: object
required: [hosts]
properties:
  addresses:
    {{- include "base.schema.stringList" . | nindent 4 }}
  endpoints:
    {{- include "base.schema.openList" . | nindent 4 }}
  exportTo:
    {{- include "base.schema.stringList" . | nindent 4 }}
  hosts:
    {{- include "base.schema.stringList" . | nindent 4 }}
  location:
    type: string
    enum: [MESH_EXTERNAL, MESH_INTERNAL]
  ports:
    type: array
    items:
      type: object
      required: [number, name]
      properties:
        name:
          type: string
        number:
          type: integer
          minimum: 0
          maximum: 4294967295
        protocol:
          type: string
        targetPort:
          type: integer
          minimum: 0
          maximum: 4294967295
  resolution:
    type: string
    enum: [NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS]
  subjectAltNames:
    {{- include "base.schema.stringList" . | nindent 4 }}
  workloadSelector:
    {{- include "base.schema.workloadSelector" . | nindent 4 }}
{{- end }}

{{- define "base.schema.PeerAuthentication" -}}
description: 'Peer authentication configuration for workloads. See more details at: https://istio.io/docs/reference/config/security/peer_authentication.html'
type: object
properties:
  mtls:
    type: object
    properties:
      mode:
        type: string
        enum: [UNSET, DISABLE, PERMISSIVE, STRICT]
  portLevelMtls:
    type: object
    additionalProperties:
      type: object
      properties:
        mode:
          type: string
          enum: [UNSET, DISABLE, PERMISSIVE, STRICT]
  selector:
    {{- include "base.schema.workloadSelector" . | nindent 4 }}
{{- end }}

{{- define "base.schema.AuthorizationPolicy" -}}
description: 'Configuration for access control on workloads. See more details at: https://istio.io/docs/reference/config/security/authorization-policy.html'
type: object
properties:
  action:
    type: string
    enum: [ALLOW, DENY, AUDIT, CUSTOM]
  provider:
    type: object
    properties:
      name:
        type: string
  rules:
    {{- include "base.schema.openList" . | nindent 4 }}
  selector:
    {{- include "base.schema.workloadSelector" . | nindent 4 }}
  targetRef:
    {{- include "base.schema.open" . | nindent 4 }}
  targetRefs:
    {{- include "base.schema.openList" . | nindent 4 }}
{{- end }}

{{- define "base.schema.any" -}}
{{- include "base.schema.open" . }}
{{- end }}
