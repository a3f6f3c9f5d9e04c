#!/usr/bin/env python3
"""Renders and checks csp's Kubernetes manifests (k8s/) without a cluster.

    k8s_manifests.py render DIR          print what `kubectl kustomize DIR` prints
    k8s_manifests.py same A B            exit 1 unless two renderings hold the same objects
    k8s_manifests.py check RENDERED ROOT exit 1 on csp-specific mistakes (below)

`render` exists for machines without kubectl >= 1.21 or kustomize (Debian's
kubernetes-client is 1.20). It implements only the kustomize features k8s/
uses: `resources` (files and directories with a kustomization.yaml),
`namespace`, `labels` (metadata only) and `images` (name, newName, newTag). Any other field is an error rather
than silently ignored, and where kubectl is available `same` proves both
renderings agree.

`check` tests what a schema cannot: the shutdown arithmetic, the session-pool's
memory sizing, probe targets, Secret keys against the template, and that no
Secret is rendered.
"""

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


def main(argv):
    if len(argv) == 2 and argv[0] == "render":
        yaml.safe_dump_all(render(argv[1]), sys.stdout, sort_keys=True)
    elif len(argv) == 3 and argv[0] == "same":
        same(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "check":
        check(argv[1], argv[2])
    else:
        fail(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv[1:])
