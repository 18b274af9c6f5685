"""The Go shapes of the built-in kinds the sandbox models (the fields its controllers and clients read).

Looked up by storage key (`group/plural`); kinds without an entry are checked for metadata only.
"""

from __future__ import annotations

from meshwright.sandbox.kube.schema.fieldtypes import (
    ANY,
    BOOL,
    BYTES,
    INT32,
    INT64,
    INT_OR_STRING,
    QUANTITY,
    STRING,
    STRING_MAP,
    STRINGS,
    FieldType,
    ListOf,
    MapOf,
    Struct,
)


def _s(go: str, **fields: FieldType) -> Struct:
    return Struct(go, fields)


OWNER_REFERENCE = _s(
    "v1.OwnerReference",
    apiVersion=STRING,
    kind=STRING,
    name=STRING,
    uid=STRING,
    controller=BOOL,
    blockOwnerDeletion=BOOL,
)
OBJECT_META = _s(
    "v1.ObjectMeta",
    name=STRING,
    generateName=STRING,
    namespace=STRING,
    uid=STRING,
    resourceVersion=STRING,
    generation=INT64,
    creationTimestamp=ANY,
    labels=STRING_MAP,
    annotations=STRING_MAP,
    finalizers=STRINGS,
    ownerReferences=ListOf(OWNER_REFERENCE),
    managedFields=ListOf(ANY),
)
LABEL_SELECTOR = _s(
    "v1.LabelSelector",
    matchLabels=STRING_MAP,
    matchExpressions=ListOf(_s("v1.LabelSelectorRequirement", key=STRING, operator=STRING, values=STRINGS)),
)
CONTAINER = _s(
    "v1.Container",
    name=STRING,
    image=STRING,
    command=STRINGS,
    args=STRINGS,
    workingDir=STRING,
    imagePullPolicy=STRING,
    ports=ListOf(_s("v1.ContainerPort", name=STRING, containerPort=INT32, hostPort=INT32, protocol=STRING)),
    env=ListOf(_s("v1.EnvVar", name=STRING, value=STRING, valueFrom=ANY)),
    resources=_s("v1.ResourceRequirements", limits=MapOf(QUANTITY), requests=MapOf(QUANTITY)),
    volumeMounts=ListOf(_s("v1.VolumeMount", name=STRING, mountPath=STRING, readOnly=BOOL)),
)
POD_SPEC = _s(
    "v1.PodSpec",
    containers=ListOf(CONTAINER),
    initContainers=ListOf(CONTAINER),
    serviceAccountName=STRING,
    nodeName=STRING,
    nodeSelector=STRING_MAP,
    volumes=ListOf(_s("v1.Volume", name=STRING)),
    terminationGracePeriodSeconds=INT64,
)
POD_TEMPLATE = _s("v1.PodTemplateSpec", metadata=OBJECT_META, spec=POD_SPEC)
SERVICE_PORT = _s(
    "v1.ServicePort",
    name=STRING,
    protocol=STRING,
    appProtocol=STRING,
    port=INT32,
    targetPort=INT_OR_STRING,
    nodePort=INT32,
)
SERVICE_SPEC = _s(
    "v1.ServiceSpec",
    type=STRING,
    ports=ListOf(SERVICE_PORT),
    selector=STRING_MAP,
    clusterIP=STRING,
    clusterIPs=STRINGS,
    externalIPs=STRINGS,
    externalName=STRING,
    externalTrafficPolicy=STRING,
    internalTrafficPolicy=STRING,
    sessionAffinity=STRING,
    loadBalancerIP=STRING,
    loadBalancerSourceRanges=STRINGS,
    ipFamilies=STRINGS,
    ipFamilyPolicy=STRING,
    publishNotReadyAddresses=BOOL,
    allocateLoadBalancerNodePorts=BOOL,
)
DEPLOYMENT_SPEC = _s(
    "v1.DeploymentSpec",
    replicas=INT32,
    selector=LABEL_SELECTOR,
    template=POD_TEMPLATE,
    strategy=_s(
        "v1.DeploymentStrategy",
        type=STRING,
        rollingUpdate=_s("v1.RollingUpdateDeployment", maxSurge=INT_OR_STRING, maxUnavailable=INT_OR_STRING),
    ),
    minReadySeconds=INT32,
    revisionHistoryLimit=INT32,
    paused=BOOL,
    progressDeadlineSeconds=INT32,
)
REPLICATED_SPEC = _s("v1.StatefulSetSpec", replicas=INT32, selector=LABEL_SELECTOR, template=POD_TEMPLATE)
WEBHOOK = _s(
    "v1.ValidatingWebhook",
    name=STRING,
    clientConfig=_s(
        "v1.WebhookClientConfig",
        url=STRING,
        caBundle=BYTES,
        service=_s("v1.ServiceReference", namespace=STRING, name=STRING, path=STRING, port=INT32),
    ),
    rules=ListOf(
        _s(
            "v1.RuleWithOperations",
            operations=STRINGS,
            apiGroups=STRINGS,
            apiVersions=STRINGS,
            resources=STRINGS,
            scope=STRING,
        )
    ),
    failurePolicy=STRING,
    matchPolicy=STRING,
    sideEffects=STRING,
    timeoutSeconds=INT32,
    admissionReviewVersions=STRINGS,
    namespaceSelector=LABEL_SELECTOR,
    objectSelector=LABEL_SELECTOR,
    reinvocationPolicy=STRING,
)
POLICY_RULE = _s(
    "v1.PolicyRule",
    verbs=STRINGS,
    apiGroups=STRINGS,
    resources=STRINGS,
    resourceNames=STRINGS,
    nonResourceURLs=STRINGS,
)
ROLE_BINDING: dict[str, FieldType] = {
    "roleRef": _s("v1.RoleRef", apiGroup=STRING, kind=STRING, name=STRING),
    "subjects": ListOf(_s("v1.Subject", kind=STRING, apiGroup=STRING, name=STRING, namespace=STRING)),
}
JSON_SCHEMA = _s(
    "v1.JSONSchemaProps",
    type=STRING,
    required=STRINGS,
    properties=MapOf(Struct("v1.JSONSchemaProps")),
    items=Struct("v1.JSONSchemaProps"),
    enum=ListOf(ANY),
    pattern=STRING,
    nullable=BOOL,
)
CRD_SPEC = _s(
    "v1.CustomResourceDefinitionSpec",
    group=STRING,
    scope=STRING,
    names=_s(
        "v1.CustomResourceDefinitionNames",
        plural=STRING,
        singular=STRING,
        kind=STRING,
        listKind=STRING,
        shortNames=STRINGS,
        categories=STRINGS,
    ),
    versions=ListOf(
        _s(
            "v1.CustomResourceDefinitionVersion",
            name=STRING,
            served=BOOL,
            storage=BOOL,
            deprecated=BOOL,
            schema=_s("v1.CustomResourceValidation", openAPIV3Schema=JSON_SCHEMA),
            subresources=_s("v1.CustomResourceSubresources", status=MapOf(ANY), scale=MapOf(ANY)),
            additionalPrinterColumns=ListOf(
                _s(
                    "v1.CustomResourceColumnDefinition",
                    name=STRING,
                    type=STRING,
                    jsonPath=STRING,
                    priority=INT32,
                )
            ),
        )
    ),
)


def _kind(go: str, **fields: FieldType) -> Struct:
    return Struct(go, {"metadata": OBJECT_META, "apiVersion": STRING, "kind": STRING, **fields})


SHAPES: dict[str, Struct] = {
    "/namespaces": _kind("Namespace", spec=_s("v1.NamespaceSpec", finalizers=STRINGS)),
    "/configmaps": _kind("ConfigMap", data=STRING_MAP, binaryData=MapOf(BYTES), immutable=BOOL),
    "/secrets": _kind("Secret", data=MapOf(BYTES), stringData=STRING_MAP, type=STRING, immutable=BOOL),
    "/serviceaccounts": _kind(
        "ServiceAccount",
        secrets=ListOf(_s("v1.ObjectReference", name=STRING, namespace=STRING)),
        imagePullSecrets=ListOf(_s("v1.LocalObjectReference", name=STRING)),
        automountServiceAccountToken=BOOL,
    ),
    "/services": _kind("Service", spec=SERVICE_SPEC),
    "/pods": _kind("Pod", spec=POD_SPEC),
    "apps/deployments": _kind("Deployment", spec=DEPLOYMENT_SPEC),
    "apps/replicasets": _kind("ReplicaSet", spec=REPLICATED_SPEC),
    "apps/statefulsets": _kind("StatefulSet", spec=REPLICATED_SPEC),
    "apps/daemonsets": _kind("DaemonSet", spec=REPLICATED_SPEC),
    "autoscaling/horizontalpodautoscalers": _kind(
        "HorizontalPodAutoscaler",
        spec=_s(
            "v2.HorizontalPodAutoscalerSpec",
            scaleTargetRef=_s("v2.CrossVersionObjectReference", apiVersion=STRING, kind=STRING, name=STRING),
            minReplicas=INT32,
            maxReplicas=INT32,
            metrics=ListOf(_s("v2.MetricSpec", type=STRING)),
        ),
    ),
    "policy/poddisruptionbudgets": _kind(
        "PodDisruptionBudget",
        spec=_s(
            "v1.PodDisruptionBudgetSpec",
            minAvailable=INT_OR_STRING,
            maxUnavailable=INT_OR_STRING,
            selector=LABEL_SELECTOR,
            unhealthyPodEvictionPolicy=STRING,
        ),
    ),
    "discovery.k8s.io/endpointslices": _kind(
        "EndpointSlice",
        addressType=STRING,
        endpoints=ListOf(_s("v1.Endpoint", addresses=STRINGS, hostname=STRING, nodeName=STRING)),
        ports=ListOf(_s("v1.EndpointPort", name=STRING, port=INT32, protocol=STRING, appProtocol=STRING)),
    ),
    "rbac.authorization.k8s.io/roles": _kind("Role", rules=ListOf(POLICY_RULE)),
    "rbac.authorization.k8s.io/clusterroles": _kind(
        "ClusterRole", rules=ListOf(POLICY_RULE), aggregationRule=ANY
    ),
    "rbac.authorization.k8s.io/rolebindings": _kind("RoleBinding", **ROLE_BINDING),
    "rbac.authorization.k8s.io/clusterrolebindings": _kind("ClusterRoleBinding", **ROLE_BINDING),
    "admissionregistration.k8s.io/validatingwebhookconfigurations": _kind(
        "ValidatingWebhookConfiguration", webhooks=ListOf(WEBHOOK)
    ),
    "admissionregistration.k8s.io/mutatingwebhookconfigurations": _kind(
        "MutatingWebhookConfiguration", webhooks=ListOf(WEBHOOK)
    ),
    "admissionregistration.k8s.io/validatingadmissionpolicies": _kind(
        "ValidatingAdmissionPolicy",
        spec=_s(
            "v1.ValidatingAdmissionPolicySpec",
            failurePolicy=STRING,
            validations=ListOf(_s("v1.Validation", expression=STRING, message=STRING)),
        ),
    ),
    "admissionregistration.k8s.io/validatingadmissionpolicybindings": _kind(
        "ValidatingAdmissionPolicyBinding",
        spec=_s("v1.ValidatingAdmissionPolicyBindingSpec", policyName=STRING, validationActions=STRINGS),
    ),
    "apiextensions.k8s.io/customresourcedefinitions": _kind("CustomResourceDefinition", spec=CRD_SPEC),
}
META_ONLY = _kind("Object")


def shape(type_key: str, kind: str) -> Struct:
    """The shape of a kind; kinds not modelled (custom resources included) check metadata only."""
    found = SHAPES.get(type_key)
    return found if found is not None else Struct(kind, META_ONLY.fields)
