"""What belongs to a project as a whole: its number, its enabled APIs, its service accounts, its quotas.

Serves Compute's `projects.get`, `regions.get` (quotas with limit and usage) and `machineTypes.get`,
IAM v1's `projects.serviceAccounts` (get, list, create, delete) and Service Usage's `services`
(get, enable, disable). A project comes into being on first use with every API enabled and the
Compute Engine default service account, as a new project that has enabled them does.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.clock import rfc3339_micros
from meshwright.sandbox.gcp import catalog, validate
from meshwright.sandbox.gcp import errors as e
from meshwright.sandbox.gcp.validate import Fields

Usage = Callable[[str, str], dict[str, float]]
Quotas = dict[str, dict[str, float]]  # region -> metric -> limit


class Projects:
    """Every project's settings; quotas come from the sandbox's settings, usage from what runs."""

    def __init__(self, stored: Any, *, quotas: Quotas | None = None, base_url: Callable[[], str]) -> None:
        self.projects: dict[str, dict[str, Any]] = {}
        for project, data in (stored if isinstance(stored, dict) else {}).items():
            if isinstance(data, dict) and validate.PROJECT.fullmatch(str(project)):
                given = data.get("accounts")
                accounts = (
                    {str(k): v for k, v in given.items() if isinstance(v, dict)}
                    if isinstance(given, dict)
                    else {}
                )
                disabled = [s for s in data.get("disabled") or [] if validate.SERVICE.fullmatch(str(s))]
                self.projects[str(project)] = {"accounts": accounts, "disabled": disabled}
        self.quotas = quotas or {}
        self.usage: Usage = lambda project, region: {}
        self._base_url = base_url

    def to_json(self) -> dict[str, Any]:
        return self.projects

    def _project(self, project: str) -> dict[str, Any]:
        validate.project(project)
        if project not in self.projects:
            default = catalog.default_service_account(project)
            self.projects[project] = {"accounts": {}, "disabled": []}
            self._put_account(project, default, "Compute Engine default service account")
        return self.projects[project]

    # -- Service Usage -----------------------------------------------------------------------

    def check_enabled(self, params: dict[str, str], api: str) -> None:
        """403 SERVICE_DISABLED, as Google's front end answers a call to an API the project has not enabled.

        Google checks the caller's project (its credentials' quota project); the sandbox knows no
        callers and checks the project the request is about (for `projects/-`, the account's own).
        """
        project = params.get("project", "")
        if project == "-" and "email" in params:
            project = self._owner(params["email"]) or ""
        service = catalog.API_SERVICE.get(api)
        if service and validate.PROJECT.fullmatch(project) and service in self._project(project)["disabled"]:
            raise e.service_disabled(service, catalog.SERVICES[service], catalog.project_number(project))

    def get_service(self, project: str, service: str) -> dict[str, Any]:
        if not validate.SERVICE.fullmatch(service):
            # gcloud services enable with a name Google does not know: PERMISSION_DENIED with this text.
            raise e.GcpError(403, e.SERVICE_UNKNOWN.format(service=service), status="PERMISSION_DENIED")
        number = catalog.project_number(project)
        return {
            "name": f"projects/{number}/services/{service}",
            "parent": f"projects/{number}",
            "config": {"name": service, "title": catalog.SERVICES.get(service, service)},
            "state": "DISABLED" if service in self._project(project)["disabled"] else "ENABLED",
        }

    def set_service(self, project: str, service: str, *, enabled: bool) -> dict[str, Any]:
        """`services.enable` / `services.disable`: a long-running operation, done at once here."""
        self.get_service(project, service)
        disabled = self.projects[project]["disabled"]
        if enabled and service in disabled:
            disabled.remove(service)
        elif not enabled and service not in disabled:
            disabled.append(service)
        kind = "EnableServiceResponse" if enabled else "DisableServiceResponse"
        response = {"@type": f"type.googleapis.com/google.api.serviceusage.v1.{kind}"}
        operation = f"operations/sandbox.{secrets.token_hex(8)}"
        return {
            "name": operation,
            "done": True,
            "response": {**response, "service": self.get_service(project, service)},
        }

    # -- IAM service accounts ----------------------------------------------------------------

    def _put_account(self, project: str, email: str, display: str) -> dict[str, Any]:
        view = {
            "name": f"projects/{project}/serviceAccounts/{email}",
            "projectId": project,
            "uniqueId": str(10**20 + secrets.randbits(60)),
            "email": email,
            "displayName": display,
            "etag": "MDEwMjE5MjA=",
            "oauth2ClientId": str(10**20 + secrets.randbits(60)),
        }
        self.projects[project]["accounts"][email] = view
        return view

    def account_exists(self, project: str, email: str) -> bool:
        owner = self._owner(email) or project
        return validate.PROJECT.fullmatch(owner) is not None and email in self._project(owner)["accounts"]

    def get_account(self, project: str, email: str) -> dict[str, Any]:
        """IAM answers 404 'Unknown service account' for an email it does not know (and, to a caller
        without iam.serviceAccounts.get, 403 whether or not it exists: terraform-provider-google#3349)."""
        owner = self._owner(email) or project
        if project != "-":
            validate.project(project)
        if not self.account_exists(owner, email):
            raise e.GcpError(404, e.ACCOUNT_UNKNOWN)
        return dict(self.projects[owner]["accounts"][email])

    def _owner(self, email: str) -> str | None:
        """The project an account belongs to, read off its email: name@PROJECT.iam.gserviceaccount.com,
        or NUMBER-compute@developer.gserviceaccount.com for a project the sandbox knows."""
        name, _, domain = email.partition("@")
        if domain.endswith(".iam.gserviceaccount.com"):
            return domain.removesuffix(".iam.gserviceaccount.com")
        if domain == "developer.gserviceaccount.com":
            number = name.removesuffix("-compute")
            return next((p for p in self.projects if catalog.project_number(p) == number), None)
        return None

    def list_accounts(self, project: str) -> dict[str, Any]:
        return {"accounts": sorted(self._project(project)["accounts"].values(), key=lambda a: a["email"])}

    def create_account(self, project: str, body: Any) -> dict[str, Any]:
        given = Fields.root(body, "google.iam.admin.v1.CreateServiceAccountRequest")
        account_id = given.text("accountId")
        if not validate.ACCOUNT_ID.fullmatch(account_id):
            raise e.invalid(e.ACCOUNT_ID_INVALID.format(account_id=validate.shown(account_id)))
        email = f"{account_id}@{project}.iam.gserviceaccount.com"
        if email in self._project(project)["accounts"]:
            raise e.GcpError(409, e.ACCOUNT_EXISTS.format(email=email, project=project))
        display = given.message("serviceAccount", "google.iam.admin.v1.ServiceAccount").text("displayName")
        return self._put_account(project, email, display)

    def delete_account(self, project: str, email: str) -> dict[str, Any]:
        account = self.get_account(project, email)
        del self.projects[account["projectId"]]["accounts"][account["email"]]
        return {}

    # -- Compute: project, regions with quotas, machine types --------------------------------

    def get_project(self, project: str) -> dict[str, Any]:
        self._project(project)
        return {
            "kind": "compute#project",
            "id": catalog.project_number(project),
            "name": project,
            "creationTimestamp": rfc3339_micros(0),
            "defaultServiceAccount": catalog.default_service_account(project),
            "defaultNetworkTier": "PREMIUM",
            "xpnProjectStatus": "UNSPECIFIED_XPN_PROJECT_STATUS",
            "selfLink": f"{self._base_url()}/compute/v1/projects/{project}",
        }

    def limits(self, region: str) -> dict[str, float]:
        return {**catalog.DEFAULT_QUOTAS, **self.quotas.get(region, {})}

    def get_region(self, project: str, region: str) -> dict[str, Any]:
        self._project(project)
        validate.region(region)
        used = self.usage(project, region)
        quotas = [
            {"metric": metric, "limit": limit, "usage": used.get(metric, 0.0)}
            for metric, limit in sorted(self.limits(region).items())
        ]
        base = f"{self._base_url()}/compute/v1/projects/{project}"
        return {
            "kind": "compute#region",
            "id": str(1000 + int(catalog.project_number(region)) % 9000),
            "name": region,
            "description": region,
            "status": "UP",
            "zones": [f"{base}/zones/{zone}" for zone in catalog.zones(region)],
            "quotas": quotas,
            "creationTimestamp": rfc3339_micros(0),
            "selfLink": f"{base}/regions/{region}",
        }

    def get_machine_type(self, project: str, zone: str, name: str) -> dict[str, Any]:
        self._project(project)
        cpus = catalog.guest_cpus(name)
        if not validate.ZONE.fullmatch(zone) or cpus is None:
            path = f"projects/{project}/zones/{zone}/machineTypes/{name}"
            raise e.GcpError(404, e.RESOURCE_PATH_NOT_FOUND.format(path=path))
        base = f"{self._base_url()}/compute/v1/projects/{project}/zones/{zone}"
        return {
            "kind": "compute#machineType",
            "id": str(int(catalog.project_number(name)) % 10**7),
            "name": name,
            "description": f"{cpus} vCPUs",
            "guestCpus": cpus,
            "memoryMb": catalog.memory_mb(name),
            "isSharedCpu": name in catalog.SHARED_CORE,
            "zone": zone,
            "creationTimestamp": rfc3339_micros(0),
            "selfLink": f"{base}/machineTypes/{name}",
        }
