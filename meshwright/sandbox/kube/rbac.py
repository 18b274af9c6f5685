"""RBAC decisions, made as kube-apiserver's RBAC authorizer makes them, and the 403 it answers with.

Modelled on kubernetes/kubernetes:
- `plugin/pkg/auth/authorizer/rbac/rbac.go`: `RBACAuthorizer.Authorize` visits every rule that
  applies to the user and allows on the first one that `RuleAllows`; otherwise it has no opinion,
  and the reason is empty unless a binding's role could not be resolved ("RBAC: <errors>").
- `pkg/registry/rbac/validation/rule.go`: `VisitRulesFor` walks ClusterRoleBindings first, then
  the RoleBindings of the request's namespace (none for a cluster-scoped request); `appliesToUser`
  matches User and Group subjects by name and ServiceAccount subjects by
  `system:serviceaccount:<ns>:<name>`, a binding's own namespace standing in for a missing one.
- `pkg/apis/rbac/v1/evaluation_helpers.go`: `VerbMatches`, `APIGroupMatches`, `ResourceMatches`
  (`*`, `resource/subresource`, `*/subresource`), `ResourceNameMatches` (an empty list matches
  every name), `NonResourceURLMatches` (`*`, exact, or a prefix ending in `*`).
- `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go` (`Forbidden`,
  `forbiddenMessage`) with apimachinery's `errors.NewForbidden`: the Status message and details.
- `pkg/kubeapiserver/authorizer/config.go`: kube-apiserver puts
  `authorizerfactory.NewPrivilegedGroups("system:masters")` before RBAC, so that group is allowed
  everything whatever the bindings say; the sandbox operator's token is in it.

Aggregated ClusterRoles (`aggregationRule`) are not expanded: no bundled chart uses them, and the
bootstrap roles here carry their rules directly. This module reads policy through `Policy` and
imports nothing from the store or HTTP layers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from meshwright.sandbox.kube.status import KubeError

MASTERS = "system:masters"
RBAC_GROUP = "rbac.authorization.k8s.io"
_SANITIZE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})  # errors.go: no HTML-looking errors


@dataclass(frozen=True)
class User:
    """Who a request authenticated as (user.Info: name and groups)."""

    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do (authorizer.Attributes), as `RequestInfo` parses it from the URL."""

    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


class Policy(Protocol):
    """The RBAC objects of one cluster (the listers and getters of the real resolver)."""

    def cluster_role_bindings(self) -> Iterable[dict[str, Any]]: ...

    def role_bindings(self, namespace: str) -> Iterable[dict[str, Any]]: ...

    def cluster_role(self, name: str) -> dict[str, Any] | None: ...

    def role(self, namespace: str, name: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def verb_matches(rule: dict[str, Any], verb: str) -> bool:
    return any(v in ("*", verb) for v in _strings(rule.get("verbs")))


def api_group_matches(rule: dict[str, Any], group: str) -> bool:
    return any(g in ("*", group) for g in _strings(rule.get("apiGroups")))


def resource_matches(rule: dict[str, Any], combined: str, subresource: str) -> bool:
    for resource in _strings(rule.get("resources")):
        if resource in ("*", combined):
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: dict[str, Any], name: str) -> bool:
    names = _strings(rule.get("resourceNames"))
    return not names or name in names


def non_resource_url_matches(rule: dict[str, Any], path: str) -> bool:
    for url in _strings(rule.get("nonResourceURLs")):
        if url in ("*", path) or (url.endswith("*") and path.startswith(url.rstrip("*"))):
            return True
    return False


def rule_allows(attrs: Attributes, rule: dict[str, Any]) -> bool:
    """rbac.go `RuleAllows`: a resource rule for resource requests, a URL rule for the others."""
    if not verb_matches(rule, attrs.verb):
        return False
    if not attrs.resource_request:
        return non_resource_url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (
        api_group_matches(rule, attrs.api_group)
        and resource_matches(rule, combined, attrs.subresource)
        and resource_name_matches(rule, attrs.name)
    )


def _applies_to(user: User, subject: Any, namespace: str) -> bool:
    """rule.go `appliesToUser`."""
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"system:serviceaccount:{sa_namespace}:{name}"
    return False


def _subject(user: User, binding: dict[str, Any], namespace: str) -> dict[str, Any] | None:
    """rule.go `appliesTo`: the binding's first subject that names the user."""
    subjects = binding.get("subjects")
    if not isinstance(subjects, list):
        return None
    return next((s for s in subjects if _applies_to(user, s, namespace)), None)


def applies_to(user: User, binding: dict[str, Any], namespace: str = "") -> bool:
    return _subject(user, binding, namespace) is not None


def _role_rules(
    policy: Policy, ref: dict[str, Any], namespace: str
) -> tuple[list[dict[str, Any]], str | None]:
    """rule.go `GetRoleReferenceRules`: the rules, or the error a lister would give."""
    kind, name = ref.get("kind"), str(ref.get("name") or "")
    if kind == "Role":
        role = policy.role(namespace, name) if namespace else None
        missing = f'role.{RBAC_GROUP} "{name}" not found'
    elif kind == "ClusterRole":
        role = policy.cluster_role(name)
        missing = f'clusterrole.{RBAC_GROUP} "{name}" not found'
    else:
        return [], f'unsupported role reference kind: "{kind}"'
    if role is None:
        return [], missing
    rules = role.get("rules")
    return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else [], None


def _describe(binding: dict[str, Any], ref: dict[str, Any], subject: dict[str, Any], namespace: str) -> str:
    """rule.go's binding describers, as `SubjectAccessReview` reasons quote them."""
    name = str((binding.get("metadata") or {}).get("name", ""))
    kind, who = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        who = f"{who}/{subject.get('namespace') or namespace}"
    role = f'{ref.get("kind")} "{ref.get("name")}" to {kind} "{who}"'
    if namespace:
        return f'RoleBinding "{name}/{namespace}" of {role}'
    return f'ClusterRoleBinding "{name}" of {role}'


def _bindings(
    policy: Policy, user: User, namespace: str
) -> Iterable[tuple[dict[str, Any], dict[str, Any], str]]:
    """rule.go `VisitRulesFor`: cluster-wide bindings, then the namespace's, with the subject that matched."""
    for binding in policy.cluster_role_bindings():
        if (subject := _subject(user, binding, "")) is not None:
            yield binding, subject, ""
    if namespace:
        for binding in policy.role_bindings(namespace):
            if (subject := _subject(user, binding, namespace)) is not None:
                yield binding, subject, namespace


def authorize(attrs: Attributes, user: User, policy: Policy) -> Decision:
    """Allowed by the first rule that allows it; else denied, with the resolution errors as reason."""
    if MASTERS in user.groups:
        return Decision(True)
    errors: list[str] = []
    for binding, subject, namespace in _bindings(policy, user, attrs.namespace):
        given = binding.get("roleRef")
        ref: dict[str, Any] = given if isinstance(given, dict) else {}
        rules, error = _role_rules(policy, ref, namespace)
        if error is not None and error not in errors:
            errors.append(error)
        if any(rule_allows(attrs, rule) for rule in rules):
            return Decision(True, f"RBAC: allowed by {_describe(binding, ref, subject, namespace)}")
    if not errors:
        return Decision(False)
    # utilerrors.NewAggregate: one error as itself, several as "[a, b]".
    return Decision(False, "RBAC: " + (errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"))


def forbidden_message(attrs: Attributes, user: User) -> str:
    """errors.go `forbiddenMessage`."""
    if not attrs.resource_request:
        return f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    head = f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}"'
    if attrs.namespace:
        return f'{head} in the namespace "{attrs.namespace}"'
    return f"{head} at the cluster scope"


def forbidden(attrs: Attributes, user: User, reason: str = "") -> KubeError:
    """The 403 Status: errors.go `Forbidden` wrapped by apimachinery's `NewForbidden(gr, name, err)`."""
    message = forbidden_message(attrs, user).translate(_SANITIZE)
    if reason:
        message = f"{message}: {reason}"
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if not qualified:
        text = f"forbidden: {message}"
    elif not attrs.name:
        text = f"{qualified} is forbidden: {message}"
    else:
        text = f'{qualified} "{attrs.name}" is forbidden: {message}'
    details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}
    return KubeError(403, text, reason="Forbidden", details={k: v for k, v in details.items() if v})
