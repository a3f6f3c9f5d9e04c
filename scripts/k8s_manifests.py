#!/usr/bin/env python3
"""Renders and checks csp's Kubernetes manifests (k8s/) without a cluster.

    k8s_manifests.py render DIR          print what `kubectl kustomize DIR` prints
    k8s_manifests.py same A B            exit 1 unless two renderings hold the same objects
    k8s_manifests.py check RENDERED ROOT exit 1 on csp-specific mistakes (below)
    k8s_manifests.py check-tenants PLATFORM TENANT...
                                         exit 1 unless each rendered tenant overlay
                                         (`csp tenants k8s`) is isolated (below)

`render` exists for machines without kubectl >= 1.21 or kustomize (Debian's
kubernetes-client is 1.20). It implements only the kustomize features k8s/
uses: `resources` (files and directories with a kustomization.yaml),
`namespace`, `labels` (metadata only) and `images` (name, newName, newTag). Any other field is an error rather
than silently ignored, and where kubectl is available `same` proves both
renderings agree.

`check` tests what a schema cannot: the shutdown arithmetic, the session-pool's
memory sizing, probe targets, Secret keys against the template, and that no
Secret is rendered.

`check-tenants` takes the platform's rendering and two or more tenant
overlays' and evaluates their NetworkPolicies the way the API server would
match them (namespace and pod labels, ports, CIDRs): each tenant's pods can
reach no other tenant's namespace and be reached from none, its workers reach
the platform's Postgres, Redis and NATS and the platform's policies admit
them; its worker takes only its tenant's jobs; its quota holds its pods; its
RBAC stays in its namespace.
"""

import ipaddress
import os
import re
import sys

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
}
CSP_SERVICES = {"gateway", "session-pool", "policy", "plugins", "tickets", "tickets-worker"}
PROBE_PATHS = {
    "startupProbe": "/api/v1/health/startup",
    "readinessProbe": "/api/v1/health/ready",
    "livenessProbe": "/api/v1/health/live",
}


def fail(msg):
    print(f"k8s_manifests: {msg}", file=sys.stderr)
    sys.exit(1)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def render(directory):
    """The objects of the kustomization in `directory`, transformed."""
    kfile = os.path.join(directory, "kustomization.yaml")
    if not os.path.isfile(kfile):
        fail(f"{directory}: no kustomization.yaml")
    k = load_all(kfile)[0]
    unknown = set(k) - SUPPORTED
    if unknown:
        fail(f"{kfile}: unsupported kustomize fields {sorted(unknown)} (use kubectl kustomize)")
    objects = []
    for res in k.get("resources", []):
        path = os.path.join(directory, res)
        if os.path.isdir(path):
            objects.extend(render(path))
        elif os.path.isfile(path):
            objects.extend(load_all(path))
        else:
            fail(f"{kfile}: resource {res} not found")
    ns = k.get("namespace")
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if ns and obj.get("kind") not in CLUSTER_SCOPED:
            meta["namespace"] = ns
        for entry in k.get("labels", []):
            extra = set(entry) - {"pairs"}
            if extra:
                fail(f"{kfile}: unsupported labels options {sorted(extra)}")
            meta.setdefault("labels", {}).update(entry["pairs"])
        for image in k.get("images", []):
            set_image(obj, image, kfile)
    return objects


def set_image(obj, image, kfile):
    """kustomize's `images` transformer, for name/newName/newTag."""
    extra = set(image) - {"name", "newName", "newTag"}
    if extra:
        fail(f"{kfile}: unsupported images options {sorted(extra)}")
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        ref = c["image"]
        if "@" in ref:
            fail(f"{kfile}: images: digests are not supported ({ref})")
        # A tag follows the last ':' after the last '/' (a registry may have a port).
        colon = ref.rfind(":")
        name, tag = (ref[:colon], ref[colon + 1 :]) if colon > ref.rfind("/") else (ref, "")
        if name != image["name"]:
            continue
        tag = image.get("newTag", tag)
        c["image"] = image.get("newName", name) + (f":{tag}" if tag else "")


def key(obj):
    m = obj.get("metadata", {})
    return (obj.get("kind"), m.get("namespace", ""), m.get("name"))


def same(a, b):
    left = {key(o): o for o in load_all(a)}
    right = {key(o): o for o in load_all(b)}
    ok = True
    for k in sorted(set(left) | set(right), key=str):
        if left.get(k) != right.get(k):
            print(f"k8s_manifests: {k} differs between {a} and {b}", file=sys.stderr)
            ok = False
    if not ok:
        sys.exit(1)
    print(f"k8s_manifests: {len(left)} objects, renderings agree")


def containers(obj):
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec, spec.get("containers", [])


def quantity_bytes(q):
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", str(q))
    if not m or (m.group(2) and m.group(2) not in units):
        fail(f"cannot read memory quantity {q!r}")
    return int(m.group(1)) * units.get(m.group(2), 1)


def check(rendered, root):
    objects = load_all(rendered)
    errors = []
    config = next(
        (o["data"] for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "csp-config"),
        None,
    )
    if config is None:
        fail("no ConfigMap csp-config")
    grace = int(config["SHUTDOWN_GRACE_SECONDS"])
    template = load_all(os.path.join(root, "k8s", "secret.example.yaml"))[0]
    secret_keys = set(template["stringData"])
    telemetry = open(os.path.join(root, "crates", "telemetry", "src", "lib.rs"), encoding="utf-8").read()
    for path in PROBE_PATHS.values():
        if f'"{path}"' not in telemetry:
            errors.append(f"probe path {path} is not served by crates/telemetry")

    if any(o["kind"] == "Secret" for o in objects):
        errors.append("a Secret is rendered: secrets must be created with kubectl, not applied from the repo")

    seen = set()
    for obj in objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        name = obj["metadata"]["name"]
        pod, ctrs = containers(obj)
        for c in ctrs:
            ports = {p.get("name") for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
            for ref in c.get("env", []):
                skr = ref.get("valueFrom", {}).get("secretKeyRef")
                if skr and skr["name"] == "csp-secrets" and not skr.get("optional") and skr["key"] not in secret_keys:
                    errors.append(f"{name}: required Secret key {skr['key']} missing from secret.example.yaml")
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False or sc.get("capabilities", {}).get("drop") != ["ALL"]:
                errors.append(f"{name}: container must drop ALL capabilities and forbid privilege escalation")
            if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
                errors.append(f"{name}: pod must set runAsNonRoot")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                http = c.get(probe, {}).get("httpGet")
                if http and http["port"] not in ports:
                    errors.append(f"{name}: {probe} targets port {http['port']}, not a container port")
            if name not in CSP_SERVICES:
                continue
            seen.add(name)
            if c.get("args", [None, None])[:2] != ["serve", name]:
                errors.append(f"{name}: args must be ['serve', '{name}']")
            for probe, path in PROBE_PATHS.items():
                got = c.get(probe, {}).get("httpGet", {}).get("path")
                if got != path:
                    errors.append(f"{name}: {probe} path {got!r}, expected {path}")
            sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            tgps = pod.get("terminationGracePeriodSeconds", 30)
            if tgps <= sleep + grace:
                errors.append(
                    f"{name}: terminationGracePeriodSeconds {tgps} must exceed"
                    f" preStop {sleep} + SHUTDOWN_GRACE_SECONDS {grace}"
                )
            if sc.get("readOnlyRootFilesystem") is not True:
                errors.append(f"{name}: readOnlyRootFilesystem must be true")
            if pod.get("securityContext", {}).get("runAsUser") != 10001:
                errors.append(f"{name}: runAsUser must be 10001")
            if name == "session-pool":
                limit = quantity_bytes(c["resources"]["limits"]["memory"])
                need = int(config["MAX_SESSIONS"]) * int(config["SESSION_MAX_RSS_BYTES"])
                if limit <= need:
                    errors.append(
                        f"session-pool: memory limit {limit} must exceed MAX_SESSIONS x SESSION_MAX_RSS_BYTES = {need}"
                    )
                env = {e["name"]: e.get("value") for e in c.get("env", [])}
                if "CSP_ADVERTISE_ADDR" not in env:
                    errors.append("session-pool: CSP_ADVERTISE_ADDR must be set per replica")
    missing = CSP_SERVICES - seen
    if missing:
        errors.append(f"no workload for {sorted(missing)}")
    for e in errors:
        print(f"k8s_manifests: {e}", file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"k8s_manifests: {len(objects)} objects pass the csp checks")


# --- Tenant overlays (csp tenants k8s) -----------------------------------------

TENANT_LABEL = "csp.dev/tenant"
BACKENDS = {"postgres": 5432, "redis": 6379, "nats": 4222}
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
# Secret keys a tenant's worker may require; everything else must be optional.
TENANT_SECRET_KEYS = {"DATABASE_URL", "CSP_SECRET_KEY"}


def selects(selector, labels):
    """Whether a LabelSelector matches `labels` ({} matches everything)."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def ns_labels(namespace):
    labels = dict(namespace["metadata"].get("labels") or {})
    # Set by the API server on every namespace.
    labels["kubernetes.io/metadata.name"] = namespace["metadata"]["name"]
    return labels


def peer_matches(peer, own_ns, ns, pod_labels):
    """Whether a NetworkPolicy peer (of a policy in namespace `own_ns`)
    selects a pod with `pod_labels` in namespace object `ns`."""
    if "ipBlock" in peer:
        return False  # pods are matched by selectors; ipBlocks are checked apart
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], ns_labels(ns)):
            return False
    elif ns["metadata"]["name"] != own_ns:
        return False
    return selects(peer.get("podSelector", {}), pod_labels)


def port_allowed(rule, port):
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports)


def rule_peers(rule, direction):
    return rule.get("from" if direction == "ingress" else "to")


def allows(policies, own_ns, direction, pod_labels, ns, other_labels, port=None):
    """Whether some policy selecting the pod (`pod_labels`, in `own_ns`)
    allows traffic in `direction` with a pod (`other_labels`) of namespace
    object `ns`, on `port` (any when None)."""
    for p in policies:
        spec = p["spec"]
        kinds = spec.get("policyTypes") or ["Ingress"]
        if direction.capitalize() not in kinds or not selects(spec.get("podSelector", {}), pod_labels):
            continue
        for rule in spec.get(direction) or []:
            if port is not None and not port_allowed(rule, port):
                continue
            peers = rule_peers(rule, direction)
            if peers is None:  # no peers listed: every source or destination
                return True
            if any(peer_matches(peer, own_ns, ns, other_labels) for peer in peers):
                return True
    return False


def check_tenant(objects, platform, others, errors):
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    if len(namespaces) != 1:
        errors.append(f"a tenant overlay renders {len(namespaces)} Namespaces, expected 1")
        return None
    ns = namespaces[0]
    name = ns["metadata"]["name"]
    tenant = (ns["metadata"].get("labels") or {}).get(TENANT_LABEL)
    where = f"tenant {tenant} ({name})"
    if not tenant or name != f"csp-tenant-{tenant}":
        errors.append(f"namespace {name}: must be csp-tenant-<id> with label {TENANT_LABEL}: <id>")
        return None
    for o in objects:
        kind, meta = o["kind"], o["metadata"]
        if kind in CLUSTER_SCOPED and kind != "Namespace":
            errors.append(f"{where}: cluster-scoped {kind} {meta['name']} (RBAC and all must stay in the namespace)")
        elif kind != "Namespace" and meta.get("namespace") != name:
            errors.append(f"{where}: {kind} {meta['name']} is in namespace {meta.get('namespace')}")
        if kind == "Secret":
            errors.append(f"{where}: a Secret is rendered; create it with kubectl")

    # The worker: only this tenant's jobs, hardened like the platform's.
    config = next((o["data"] for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "csp-config"), {})
    workers = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "tickets-worker"]
    if len(workers) != 1:
        errors.append(f"{where}: expected one Deployment tickets-worker, got {len(workers)}")
        return None
    worker = workers[0]
    pod, ctrs = containers(worker)
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    for c in ctrs:
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        took = env.get("CSP_WORKER_TENANT", config.get("CSP_WORKER_TENANT"))
        if took != tenant:
            errors.append(f"{where}: the worker's CSP_WORKER_TENANT is {took!r}, not {tenant!r}")
        if "CSP_WORKER_TENANT" in config and config["CSP_WORKER_TENANT"] != tenant:
            errors.append(f"{where}: ConfigMap csp-config names tenant {config['CSP_WORKER_TENANT']!r}")
        if c.get("args", [])[:2] != ["serve", "tickets-worker"]:
            errors.append(f"{where}: the worker's args must be ['serve', 'tickets-worker']")
        sc = c.get("securityContext", {})
        if (
            sc.get("allowPrivilegeEscalation") is not False
            or sc.get("capabilities", {}).get("drop") != ["ALL"]
            or sc.get("readOnlyRootFilesystem") is not True
        ):
            errors.append(f"{where}: the worker must drop ALL, forbid escalation, read-only root")
        for probe, path in PROBE_PATHS.items():
            if c.get(probe, {}).get("httpGet", {}).get("path") != path:
                errors.append(f"{where}: the worker's {probe} must be {path}")
        for ref in c.get("env", []):
            skr = ref.get("valueFrom", {}).get("secretKeyRef")
            if skr and not skr.get("optional") and skr["key"] not in TENANT_SECRET_KEYS:
                errors.append(f"{where}: required Secret key {skr['key']} is not one the docs ask for")
        sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        if pod.get("terminationGracePeriodSeconds", 30) <= sleep + int(config.get("SHUTDOWN_GRACE_SECONDS", 30)):
            errors.append(f"{where}: terminationGracePeriodSeconds must exceed preStop + SHUTDOWN_GRACE_SECONDS")
    sc = pod.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") != 10001:
        errors.append(f"{where}: the worker's pod must run as non-root user 10001")
    if pod.get("automountServiceAccountToken") is not False:
        errors.append(f"{where}: the worker needs no service account token")

    # Quota and limits: present, and holding the replicas plus a surge.
    quotas = [o for o in objects if o["kind"] == "ResourceQuota"]
    if not quotas:
        errors.append(f"{where}: no ResourceQuota")
    if not any(o["kind"] == "LimitRange" for o in objects):
        errors.append(f"{where}: no LimitRange (a quota on limits refuses pods without them)")
    for q in quotas:
        hard = q["spec"].get("hard", {})
        for key in ("pods", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"):
            if key not in hard:
                errors.append(f"{where}: ResourceQuota {q['metadata']['name']} sets no {key}")
        if all(k in hard for k in ("pods", "limits.cpu", "limits.memory")):
            strategy = worker["spec"].get("strategy", {}).get("rollingUpdate", {})
            pods = worker["spec"].get("replicas", 1) + int(strategy.get("maxSurge", 1))
            limits = ctrs[0]["resources"]["limits"]
            if int(hard["pods"]) < pods:
                errors.append(f"{where}: quota pods {hard['pods']} < replicas + surge {pods}")
            if cpu_millis(hard["limits.cpu"]) < pods * cpu_millis(limits["cpu"]):
                errors.append(f"{where}: quota limits.cpu does not hold {pods} workers")
            if quantity_bytes(hard["limits.memory"]) < pods * quantity_bytes(limits["memory"]):
                errors.append(f"{where}: quota limits.memory does not hold {pods} workers")

    # RBAC: namespaced, no wildcards, no secrets, no exec; bound to someone.
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Role"}
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    if not bindings:
        errors.append(f"{where}: no RoleBinding for the tenant's operators")
    for b in bindings:
        ref = b["roleRef"]
        if ref["kind"] != "Role" or ref["name"] not in roles:
            errors.append(f"{where}: RoleBinding {b['metadata']['name']} must bind a Role of the overlay")
        if not b.get("subjects"):
            errors.append(f"{where}: RoleBinding {b['metadata']['name']} has no subjects")
    for r in roles.values():
        for rule in r.get("rules", []):
            fields = rule.get("verbs", []) + rule.get("resources", []) + rule.get("apiGroups", [])
            if "*" in fields:
                errors.append(f"{where}: Role {r['metadata']['name']} uses a wildcard")
            if {"secrets", "pods/exec", "pods/attach", "pods/portforward"} & set(rule.get("resources", [])):
                errors.append(f"{where}: Role {r['metadata']['name']} reaches secrets or into pods")

    # Network: default deny, no other tenant in or out, the backends both ways.
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    deny = [
        p for p in policies
        if p["spec"].get("podSelector") == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    if not deny:
        errors.append(f"{where}: no default-deny NetworkPolicy")
    for p in policies:
        for direction in ("ingress", "egress"):
            for rule in p["spec"].get(direction) or []:
                peers = rule_peers(rule, direction)
                if peers is None:
                    errors.append(f"{where}: NetworkPolicy {p['metadata']['name']} has an {direction} rule with no peers (everyone)")
                    continue
                for peer in peers:
                    block = peer.get("ipBlock")
                    if not block:
                        continue
                    cidr = ipaddress.ip_network(block["cidr"])
                    excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
                    for private in PRIVATE:
                        if cidr.overlaps(private) and not any(private.subnet_of(e) for e in excepted if e.version == 4):
                            errors.append(
                                f"{where}: NetworkPolicy {p['metadata']['name']} ipBlock {cidr} reaches {private},"
                                " where other tenants' pods live: except it"
                            )
    for other_ns, other_objects in others:
        if other_ns["metadata"]["name"] == name:
            errors.append(f"{where}: two overlays share the namespace")
            continue
        other_pods = [
            o["spec"]["template"]["metadata"].get("labels", {})
            for o in other_objects if o["kind"] in ("Deployment", "StatefulSet")
        ] + [{}]
        for other_labels in other_pods:
            for direction in ("ingress", "egress"):
                if allows(policies, name, direction, pod_labels, other_ns, other_labels):
                    errors.append(
                        f"{where}: its NetworkPolicies allow {direction} with namespace {other_ns['metadata']['name']}"
                    )
    platform_ns = next(o for o in platform if o["kind"] == "Namespace")
    platform_policies = [o for o in platform if o["kind"] == "NetworkPolicy"]
    for backend, port in BACKENDS.items():
        labels = {"app.kubernetes.io/name": backend}
        if not allows(policies, name, "egress", pod_labels, platform_ns, labels, port):
            errors.append(f"{where}: the worker may not reach the platform's {backend}:{port}")
        if not allows(platform_policies, platform_ns["metadata"]["name"], "ingress", labels, ns, pod_labels, port):
            errors.append(f"{where}: the platform's {backend} does not admit the tenant's worker on {port}")
    return ns


def cpu_millis(q):
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def check_tenants(platform_file, tenant_files):
    platform = load_all(platform_file)
    tenants = [load_all(f) for f in tenant_files]
    if len(tenants) < 2:
        fail("check-tenants needs two tenant overlays or more (isolation is between tenants)")
    namespaces = [next((o for o in t if o["kind"] == "Namespace"), None) for t in tenants]
    errors = []
    for i, objects in enumerate(tenants):
        others = [(namespaces[j], tenants[j]) for j in range(len(tenants)) if j != i and namespaces[j]]
        check_tenant(objects, platform, others, errors)
    # One line per finding (several pods of a namespace may share one).
    errors = list(dict.fromkeys(errors))
    for e in errors:
        print(f"k8s_manifests: {e}", file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"k8s_manifests: {len(tenants)} tenant overlays are isolated and reach the platform's backends")


def main(argv):
    if len(argv) >= 3 and argv[0] == "check-tenants":
        check_tenants(argv[1], argv[2:])
    elif len(argv) == 2 and argv[0] == "render":
        yaml.safe_dump_all(render(argv[1]), sys.stdout, sort_keys=True)
    elif len(argv) == 3 and argv[0] == "same":
        same(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "check":
        check(argv[1], argv[2])
    else:
        fail(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv[1:])
