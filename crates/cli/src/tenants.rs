//! `csp tenants k8s <tenant_id>`: a kustomize overlay that gives one tenant a
//! Kubernetes namespace of its own (seed story 3.6): its tickets workers,
//! consuming only its jobs (`CSP_WORKER_TENANT`, the tenant's own queue), cut
//! off from every other tenant's namespace by NetworkPolicies while reaching
//! the platform's shared Postgres, Redis and NATS; a ResourceQuota and a
//! LimitRange, so a failing tenant cannot take the cluster's capacity; and
//! RBAC for the operators allowed to look after it.
//!
//! The files are written from a template rather than serialised: the
//! comments in them say why each rule is there, and operators read them.
//! Every value put into the template is checked first (the tenant id by the
//! [`TenantId`] rules, names as DNS labels, the image's characters) or
//! written as a quoted JSON string (operator names), so no input can add
//! YAML of its own. `scripts/check-k8s.sh` renders and validates the
//! committed examples (`k8s/tenants/example-*`), which a test here keeps
//! byte for byte what this generator writes.

use anyhow::{Context, anyhow, bail};
use clap::{ArgGroup, Args, Subcommand};
use csp_domain::TenantId;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Write a kustomize overlay for the tenant's own namespace: its
    /// tickets workers (only its jobs), NetworkPolicies, quota and RBAC.
    K8s(K8sOptions),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("operators_of").required(true).multiple(true)
    .args(["operators", "operator_group"])))]
pub(crate) struct K8sOptions {
    /// The tenant (its id in csp); its namespace is `csp-tenant-<tenant_id>`.
    tenant_id: TenantId,
    /// Where to write the overlay [default: k8s/tenants/<tenant_id>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the files of an existing directory.
    #[arg(long)]
    force: bool,
    /// The csp image the workers run (as in k8s/tickets-worker.yaml).
    #[arg(long, default_value = DEFAULT_IMAGE)]
    image: String,
    /// Kubernetes users who may view the tenant's pods and logs and restart
    /// its workers (comma-separated, as your cluster names them).
    #[arg(long, value_delimiter = ',')]
    operators: Vec<String>,
    /// A Kubernetes group whose members may do the same.
    #[arg(long)]
    operator_group: Option<String>,
    /// Worker replicas; the quota leaves room for one more during a
    /// rolling update.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    replicas: u32,
    /// The namespace of the platform (k8s/kustomization.yaml), whose
    /// Postgres, Redis and NATS the workers use.
    #[arg(long, default_value = "csp")]
    platform_namespace: String,
    /// The namespace of the Prometheus that scrapes the workers' metrics.
    #[arg(long, default_value = "monitoring")]
    monitoring_namespace: String,
}

const DEFAULT_IMAGE: &str = "ghcr.io/csp/csp:latest";
/// A namespace's name is a DNS label of at most 63 characters.
const NAMESPACE_PREFIX: &str = "csp-tenant-";
const MAX_LABEL: usize = 63;

pub(crate) async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::K8s(o) => {
            let out = o
                .out
                .clone()
                .unwrap_or_else(|| Path::new("k8s/tenants").join(o.tenant_id.as_str()));
            let overlay = Overlay::from_options(&o)?;
            let files = overlay.files();
            write(&out, &files, o.force)?;
            println!(
                "wrote {} files to {} (namespace {}); apply with: kubectl apply -k {}",
                files.len(),
                out.display(),
                overlay.namespace,
                out.display()
            );
            Ok(())
        }
    }
}

/// Writes every file, refusing an existing directory without `force`
/// (after `force`, files of the overlay are replaced and others kept).
fn write(out: &Path, files: &[(&'static str, String)], force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!(
            "{} exists: pass --force to replace the overlay's files in it",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, contents) in files {
        let path = out.join(name);
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Who may act on the tenant's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    User(String),
    Group(String),
}

/// A checked overlay, ready to be written.
#[derive(Debug, Clone)]
struct Overlay {
    tenant: TenantId,
    namespace: String,
    image: String,
    subjects: Vec<Subject>,
    replicas: u32,
    platform: String,
    monitoring: String,
}

impl Overlay {
    fn from_options(o: &K8sOptions) -> anyhow::Result<Self> {
        let namespace = format!("{NAMESPACE_PREFIX}{}", o.tenant_id);
        if namespace.len() > MAX_LABEL {
            bail!(
                "tenant id '{}' is too long for a namespace: {namespace} has {} characters, \
                 Kubernetes allows {MAX_LABEL} (tenant ids of up to {} characters fit)",
                o.tenant_id,
                namespace.len(),
                MAX_LABEL - NAMESPACE_PREFIX.len()
            );
        }
        let image = check_image(&o.image)?;
        let platform = check_dns_label("--platform-namespace", &o.platform_namespace)?;
        let monitoring = check_dns_label("--monitoring-namespace", &o.monitoring_namespace)?;
        let mut subjects = Vec::new();
        for user in o.operators.iter().map(|u| u.trim()) {
            let user = check_subject("--operators", user)?;
            let subject = Subject::User(user);
            if !subjects.contains(&subject) {
                subjects.push(subject);
            }
        }
        if let Some(group) = &o.operator_group {
            subjects.push(Subject::Group(check_subject(
                "--operator-group",
                group.trim(),
            )?));
        }
        if subjects.is_empty() {
            bail!("name at least one operator (--operators) or an --operator-group");
        }
        Ok(Self {
            tenant: o.tenant_id.clone(),
            namespace,
            image,
            subjects,
            replicas: o.replicas,
            platform,
            monitoring,
        })
    }

    /// The overlay's files, by name, in the order of its kustomization.
    fn files(&self) -> Vec<(&'static str, String)> {
        vec![
            ("kustomization.yaml", self.kustomization()),
            ("namespace.yaml", self.namespace()),
            ("configmap.yaml", self.configmap()),
            ("tickets-worker.yaml", self.deployment()),
            ("network-policies.yaml", self.network_policies()),
            ("quota.yaml", self.quota()),
            ("rbac.yaml", self.rbac()),
        ]
    }

    fn kustomization(&self) -> String {
        let Self {
            tenant,
            namespace,
            platform,
            ..
        } = self;
        format!(
            r#"# Tenant {tenant}'s own namespace, written by `csp tenants k8s {tenant}`
# (docs/deployment.md#tenant-namespaces). Apply after the platform (k8s/):
#
#   kubectl apply -k <this directory>
#
# Create the workers' Secret first; it is deliberately not listed here, so no
# secret value lives in the repository. The workers reach the platform's
# backends by their names in namespace {platform}:
#
#   kubectl -n {namespace} create secret generic csp-secrets \
#     --from-literal=DATABASE_URL="postgres://postgres:<password>@postgres.{platform}.svc:5432/csp" \
#     --from-literal=CSP_SECRET_KEY="<the platform's CSP_SECRET_KEY>" \
#     --from-literal=ANTHROPIC_API_KEY="sk-ant-..."
#
# Once the workers run, give the tenant its own queue (PATCH
# /api/v1/tenants/{tenant} with {{"dedicated_queue": true}}): from then on only
# these workers take its jobs, and the shared ones hand on any left behind.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
labels:
  - pairs:
      app.kubernetes.io/part-of: csp
      csp.dev/tenant: {tenant}
resources:
  - namespace.yaml
  - configmap.yaml
  - tickets-worker.yaml
  - network-policies.yaml
  - quota.yaml
  - rbac.yaml
"#
        )
    }

    fn namespace(&self) -> String {
        let Self {
            tenant, namespace, ..
        } = self;
        format!(
            r#"# The label csp.dev/tenant is what the platform's backends admit workers by
# (k8s/backends/network-policies.yaml); the restricted Pod Security level
# refuses any pod that could escape the namespace's isolation.
apiVersion: v1
kind: Namespace
metadata:
  name: {namespace}
  labels:
    csp.dev/tenant: {tenant}
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
"#
        )
    }

    fn configmap(&self) -> String {
        let Self {
            tenant, platform, ..
        } = self;
        format!(
            r#"# The workers' non-secret settings (docs/configuration.md); the same values
# as the platform's k8s/configmap.yaml, with the backends named across
# namespaces. DATABASE_URL and the keys are in the Secret csp-secrets.
apiVersion: v1
kind: ConfigMap
metadata:
  name: csp-config
data:
  CSP_LOG_FORMAT: json
  RUST_LOG: info
  CSP_REDIS_URL: redis://redis.{platform}.svc:6379
  CSP_NATS_URL: nats://nats.{platform}.svc:4222
  # This namespace's workers take only tenant {tenant}'s jobs, from its own
  # queue (tickets.enhance.tenant.{tenant}).
  CSP_WORKER_TENANT: {tenant}
  SHUTDOWN_GRACE_SECONDS: "30"
  CSP_TICKETS_WORKER_CONCURRENCY: "4"
  CSP_TICKETS_TENANT_INFLIGHT: "4"
  CSP_ENHANCE_PROVIDER: anthropic
"#
        )
    }

    fn deployment(&self) -> String {
        let Self {
            tenant,
            image,
            replicas,
            ..
        } = self;
        format!(
            r#"# Tenant {tenant}'s tickets workers: as the platform's (k8s/tickets-worker.yaml:
# same image, probes, shutdown timeline and security context), consuming
# only the tenant's own queue. No Service: the only port is /metrics and the
# probes on :9095.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: tickets-worker
spec:
  replicas: {replicas}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: tickets-worker
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/name: tickets-worker
        app.kubernetes.io/part-of: csp
        csp.dev/tenant: {tenant}
    spec:
      automountServiceAccountToken: false
      # 5 s preStop sleep + a job's 120 s budget + 10 s margin.
      terminationGracePeriodSeconds: 135
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: tickets-worker
      containers:
        - name: tickets-worker
          image: {image}
          args: ["serve", "tickets-worker"]
          ports:
            - name: metrics
              containerPort: 9095
          envFrom:
            - configMapRef:
                name: csp-config
          env:
            # Also in the ConfigMap; here too, so the Deployment alone says
            # whose jobs it takes.
            - name: CSP_WORKER_TENANT
              value: {tenant}
            - name: CSP_METRICS_ADDR
              value: "0.0.0.0:9095"
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef: {{name: csp-secrets, key: DATABASE_URL}}
            # Opens the tenant's sealed ticketing-tool credential.
            - name: CSP_SECRET_KEY
              valueFrom:
                secretKeyRef: {{name: csp-secrets, key: CSP_SECRET_KEY}}
            - name: CSP_SECRET_KEY_PREVIOUS
              valueFrom:
                secretKeyRef: {{name: csp-secrets, key: CSP_SECRET_KEY_PREVIOUS, optional: true}}
            - name: ANTHROPIC_API_KEY
              valueFrom:
                secretKeyRef: {{name: csp-secrets, key: ANTHROPIC_API_KEY, optional: true}}
            - name: ANTHROPIC_BASE_URL
              valueFrom:
                secretKeyRef: {{name: csp-secrets, key: ANTHROPIC_BASE_URL, optional: true}}
            - name: CSP_ENHANCE_API_KEY
              valueFrom:
                secretKeyRef: {{name: csp-secrets, key: CSP_ENHANCE_API_KEY, optional: true}}
            - name: OPENROUTER_API_KEY
              valueFrom:
                secretKeyRef: {{name: csp-secrets, key: OPENROUTER_API_KEY, optional: true}}
          startupProbe:
            httpGet: {{path: /api/v1/health/startup, port: metrics}}
            periodSeconds: 5
            failureThreshold: 60
          readinessProbe:
            httpGet: {{path: /api/v1/health/ready, port: metrics}}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          livenessProbe:
            httpGet: {{path: /api/v1/health/live, port: metrics}}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          lifecycle:
            preStop:
              sleep: {{seconds: 5}}
          resources:
            requests: {{cpu: {WORKER_CPU_REQUEST}, memory: {WORKER_MEMORY_REQUEST}}}
            limits: {{cpu: "{WORKER_CPU_LIMIT}", memory: {WORKER_MEMORY_LIMIT}}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - {{name: tmp, mountPath: /tmp}}
      volumes:
        - name: tmp
          emptyDir: {{sizeLimit: 64Mi}}
"#
        )
    }

    fn network_policies(&self) -> String {
        let Self {
            tenant,
            platform,
            monitoring,
            ..
        } = self;
        let mut out = format!(
            r#"# Default deny, then exactly what tenant {tenant}'s workers need. Nothing in
# another namespace is allowed but the platform's backends (namespace
# {platform}), kube-dns and Prometheus (namespace {monitoring}), so no traffic
# flows to or from another tenant's namespace. The platform's side admits
# these workers in k8s/backends/network-policies.yaml (namespaces labelled
# csp.dev/tenant).
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
spec:
  podSelector: {{}}
  policyTypes: ["Ingress", "Egress"]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-dns
spec:
  podSelector: {{}}
  policyTypes: ["Egress"]
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: kube-system
          podSelector:
            matchLabels:
              k8s-app: kube-dns
      ports:
        - {{protocol: UDP, port: 53}}
        - {{protocol: TCP, port: 53}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: tickets-worker
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: tickets-worker
  policyTypes: ["Ingress", "Egress"]
  ingress:
    # Prometheus scrapes /metrics; nothing else may connect.
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {monitoring}
      ports:
        - {{protocol: TCP, port: 9095}}
  egress:
"#
        );
        for (name, port, why) in BACKENDS {
            let _ = write!(
                out,
                r#"    # {why}
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {platform}
          podSelector:
            matchLabels:
              app.kubernetes.io/name: {name}
      ports:
        - {{protocol: TCP, port: {port}}}
"#
            );
        }
        out.push_str(
            r#"    # The tenant's ticketing tool and knowledge-base API and the model API,
    # over HTTPS. Their addresses are not fixed, hence any public address;
    # the private ranges, where the cluster's pods and Services live, are
    # excepted, so this rule cannot reach another tenant's pods. A tool on a
    # private address (on premises, over a VPN) needs its own rule here.
    - to:
        - ipBlock:
            cidr: 0.0.0.0/0
            except:
"#,
        );
        for cidr in PRIVATE_RANGES {
            let _ = writeln!(out, "              - {cidr}");
        }
        out.push_str(
            r#"      ports:
        - {protocol: TCP, port: 443}
"#,
        );
        out
    }

    fn quota(&self) -> String {
        let Self {
            tenant, replicas, ..
        } = self;
        // Room for every replica plus the one a rolling update adds.
        let pods = replicas + 1;
        let cpu_limit = pods * WORKER_CPU_LIMIT;
        let memory_limit = pods * WORKER_MEMORY_LIMIT_MI;
        let cpu_request = pods * WORKER_CPU_REQUEST_M;
        let memory_request = pods * WORKER_MEMORY_REQUEST_MI;
        format!(
            r#"# Tenant {tenant}'s share of the cluster: its {replicas} worker replicas and one
# more during a rolling update (each {WORKER_CPU_REQUEST}/{WORKER_MEMORY_REQUEST} requested,
# {WORKER_CPU_LIMIT} CPU/{WORKER_MEMORY_LIMIT} at most), so a runaway tenant cannot starve the
# others. No Service may expose the namespace and no volume may be claimed.
apiVersion: v1
kind: ResourceQuota
metadata:
  name: tenant
spec:
  hard:
    pods: "{pods}"
    requests.cpu: {cpu_request}m
    requests.memory: {memory_request}Mi
    limits.cpu: "{cpu_limit}"
    limits.memory: {memory_limit}Mi
    services.loadbalancers: "0"
    services.nodeports: "0"
    persistentvolumeclaims: "0"
---
# A quota on limits refuses pods that set none: these are the defaults of a
# container that does not say, and the most one may ask for.
apiVersion: v1
kind: LimitRange
metadata:
  name: tenant
spec:
  limits:
    - type: Container
      defaultRequest: {{cpu: {WORKER_CPU_REQUEST}, memory: {WORKER_MEMORY_REQUEST}}}
      default: {{cpu: "{WORKER_CPU_LIMIT}", memory: {WORKER_MEMORY_LIMIT}}}
      max: {{cpu: "{WORKER_CPU_LIMIT}", memory: {WORKER_MEMORY_LIMIT}}}
"#
        )
    }

    fn rbac(&self) -> String {
        let Self { tenant, .. } = self;
        let mut out = format!(
            r#"# Tenant {tenant}'s operators: in this namespace only, they may see the
# workers, their logs and events, and restart them (`kubectl rollout restart
# deployment/tickets-worker` patches the Deployment; deleting a pod has it
# replaced). They cannot read Secrets, exec into pods or change anything else.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: tenant-operator
rules:
  - apiGroups: [""]
    resources: ["pods", "pods/log", "events", "configmaps", "resourcequotas", "limitranges"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["delete"]
  - apiGroups: ["apps"]
    resources: ["deployments", "replicasets"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["apps"]
    resources: ["deployments"]
    resourceNames: ["tickets-worker"]
    verbs: ["patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: tenant-operators
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: tenant-operator
subjects:
"#
        );
        for subject in &self.subjects {
            let (kind, name) = match subject {
                Subject::User(name) => ("User", name),
                Subject::Group(name) => ("Group", name),
            };
            let _ = write!(
                out,
                "  - apiGroup: rbac.authorization.k8s.io\n    kind: {kind}\n    name: {}\n",
                quoted(name)
            );
        }
        out
    }
}

/// The platform's backends the workers use: Service name, port, why.
const BACKENDS: [(&str, u16, &str); 3] = [
    (
        "postgres",
        5432,
        "Jobs, the tenant's settings, history, knowledge base and inventory.",
    ),
    (
        "redis",
        6379,
        "The shared circuit breaker, the knowledge-base API cache, heartbeats.",
    ),
    ("nats", 4222, "The work queue: the tenant's own topic."),
];

/// RFC 1918 and the shared address space (RFC 6598), where clusters put
/// pods and Services.
const PRIVATE_RANGES: [&str; 4] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
];

/// One worker's resources, as in k8s/tickets-worker.yaml.
const WORKER_CPU_REQUEST: &str = "100m";
const WORKER_CPU_REQUEST_M: u32 = 100;
const WORKER_MEMORY_REQUEST: &str = "128Mi";
const WORKER_MEMORY_REQUEST_MI: u32 = 128;
const WORKER_CPU_LIMIT: u32 = 1;
const WORKER_MEMORY_LIMIT: &str = "512Mi";
const WORKER_MEMORY_LIMIT_MI: u32 = 512;

/// A YAML double-quoted scalar: a JSON string is one, escapes included.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn check_dns_label(flag: &str, name: &str) -> anyhow::Result<String> {
    let ok = (1..=MAX_LABEL).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(anyhow!(
            "{flag} must be a namespace name: 1 to {MAX_LABEL} lower-case letters, digits and \
             '-', not starting or ending with '-' (got {})",
            quoted(name)
        ))
    }
}

/// An image reference as `docker` writes them: registry, path, tag and
/// digest characters only.
fn check_image(image: &str) -> anyhow::Result<String> {
    let ok = (1..=255).contains(&image.len())
        && image.starts_with(|c: char| c.is_ascii_alphanumeric())
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if ok {
        Ok(image.to_owned())
    } else {
        Err(anyhow!(
            "--image must be an image reference such as ghcr.io/csp/csp:1.2.3 (letters, digits \
             and . _ - / : @), got {}",
            quoted(image)
        ))
    }
}

/// A Kubernetes user or group name: anything the cluster's authentication
/// gives, but not empty, not a line break, and not one of the cluster's own
/// `system:` identities.
fn check_subject(flag: &str, name: &str) -> anyhow::Result<String> {
    if name.is_empty() || name.len() > 253 || name.chars().any(char::is_control) {
        bail!(
            "{flag}: a name must be 1 to 253 characters without control characters (got {})",
            quoted(name)
        );
    }
    if name.starts_with("system:") {
        bail!(
            "{flag}: {} is one of the cluster's own identities, not an operator",
            quoted(name)
        );
    }
    Ok(name.to_owned())
}

/// The committed examples `scripts/check-k8s.sh` validates: how each is
/// generated (a test keeps them identical to this generator's output).
#[cfg(test)]
pub(crate) const EXAMPLES: [&[&str]; 2] = [
    &[
        "example-a",
        "--operators",
        "alice@example.com,bob@example.com",
    ],
    &["example-b", "--operator-group", "msp-b-operators"],
];

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        o: K8sOptions,
    }

    fn options(args: &[&str]) -> Result<K8sOptions, String> {
        let mut argv = vec!["csp-tenants-k8s"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map(|c| c.o)
            .map_err(|e| e.to_string())
    }

    fn overlay(args: &[&str]) -> anyhow::Result<Overlay> {
        Overlay::from_options(&options(args).map_err(|e| anyhow!(e))?)
    }

    fn file(o: &Overlay, name: &str) -> String {
        o.files()
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
    }

    /// The documents of a file. Whether they are valid YAML and valid
    /// Kubernetes objects is what scripts/check-k8s.sh checks on the
    /// committed examples, which the last test keeps identical to this output.
    fn documents(o: &Overlay, name: &str) -> usize {
        let text = file(o, name);
        assert!(!text.contains('\t'), "{name} holds a tab");
        assert!(text.ends_with('\n'), "{name} does not end with a newline");
        text.split("\n---\n").count()
    }

    #[test]
    fn the_tenant_id_is_checked_before_anything_is_written() {
        let err = options(&["Acme Corp", "--operators", "a"]).unwrap_err();
        assert!(err.contains("tenant_id must be"), "{err}");
        let long = "a".repeat(53);
        let err = overlay(&[&long, "--operators", "a"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("too long for a namespace"), "{err}");
        overlay(&[&"a".repeat(52), "--operators", "a"]).unwrap();

        // Nothing was written for a refused id: run() fails before write().
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let o = options(&[&long, "--operators", "a", "--out", out.to_str().unwrap()]).unwrap();
        assert!(rt.block_on(run(Command::K8s(o))).is_err());
        assert!(!out.exists());
    }

    #[test]
    fn operators_are_required_and_checked() {
        let err = options(&["acme"]).unwrap_err();
        assert!(
            err.contains("--operators") || err.contains("operator"),
            "{err}"
        );
        for (args, expect) in [
            (
                &["acme", "--operators", "system:admin"][..],
                "own identities",
            ),
            (
                &["acme", "--operator-group", "a\nb"][..],
                "control characters",
            ),
            (
                &["acme", "--operators", "a", "--image", "x y"][..],
                "--image",
            ),
            (
                &["acme", "--operators", "a", "--image", "img\n  evil: 1"][..],
                "--image",
            ),
            (
                &["acme", "--operators", "a", "--platform-namespace", "Csp"][..],
                "--platform-namespace",
            ),
        ] {
            let err = overlay(args).unwrap_err().to_string();
            assert!(err.contains(expect), "{args:?}: {err}");
        }
        // A name that YAML would read otherwise is quoted.
        let o = overlay(&[
            "acme",
            "--operators",
            "alice: admin,#bob",
            "--operator-group",
            "ops",
        ])
        .unwrap();
        let rbac = file(&o, "rbac.yaml");
        assert!(
            rbac.contains("    kind: User\n    name: \"alice: admin\"\n"),
            "{rbac}"
        );
        assert!(
            rbac.contains("    kind: User\n    name: \"#bob\"\n"),
            "{rbac}"
        );
        assert!(
            rbac.contains("    kind: Group\n    name: \"ops\"\n"),
            "{rbac}"
        );
    }

    #[test]
    fn the_overlay_is_the_tenants_namespace_and_worker() {
        let o = overlay(&["acme", "--operators", "alice", "--replicas", "3"]).unwrap();
        let names: Vec<&str> = o.files().iter().map(|(n, _)| *n).collect();
        let kustomization = file(&o, "kustomization.yaml");
        for name in &names[1..] {
            assert!(
                kustomization.contains(&format!("\n  - {name}\n")),
                "{name} not listed"
            );
        }
        assert!(kustomization.contains("\nnamespace: csp-tenant-acme\n"));
        assert!(kustomization.contains("      csp.dev/tenant: acme\n"));
        assert!(file(&o, "namespace.yaml").contains("  name: csp-tenant-acme\n"));
        let worker = file(&o, "tickets-worker.yaml");
        assert!(
            worker.contains("            - name: CSP_WORKER_TENANT\n              value: acme\n")
        );
        assert!(worker.contains("  replicas: 3\n"));
        assert!(worker.contains("image: ghcr.io/csp/csp:latest\n"));
        assert!(file(&o, "configmap.yaml").contains("CSP_NATS_URL: nats://nats.csp.svc:4222\n"));
        // Four pods' worth (three replicas and a surge).
        let quota = file(&o, "quota.yaml");
        assert!(quota.contains("    pods: \"4\"\n"), "{quota}");
        assert!(quota.contains("    limits.cpu: \"4\"\n"), "{quota}");
        assert!(quota.contains("    limits.memory: 2048Mi\n"), "{quota}");
        assert_eq!(documents(&o, "quota.yaml"), 2);
        assert_eq!(documents(&o, "rbac.yaml"), 2);
        assert_eq!(documents(&o, "network-policies.yaml"), 3);
    }

    #[test]
    fn the_network_policies_reach_only_the_platform_and_the_internet() {
        let o = overlay(&[
            "acme",
            "--operators",
            "a",
            "--platform-namespace",
            "csp-prod",
        ])
        .unwrap();
        let policies = file(&o, "network-policies.yaml");
        // Every namespace named is the platform's, kube-system or monitoring.
        let named: Vec<&str> = policies
            .lines()
            .filter_map(|l| l.trim().strip_prefix("kubernetes.io/metadata.name: "))
            .collect();
        assert_eq!(
            named,
            [
                "kube-system",
                "monitoring",
                "csp-prod",
                "csp-prod",
                "csp-prod"
            ]
        );
        assert!(
            !policies.contains("csp.dev/tenant:"),
            "no selector by tenant label"
        );
        for cidr in PRIVATE_RANGES {
            assert!(
                policies.contains(&format!("              - {cidr}\n")),
                "{cidr}"
            );
        }
    }

    #[test]
    fn an_existing_directory_is_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("acme");
        let o = overlay(&["acme", "--operators", "a"]).unwrap();
        write(&out, &o.files(), false).unwrap();
        std::fs::write(out.join("tickets-worker.yaml"), "edited").unwrap();
        let err = write(&out, &o.files(), false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        assert_eq!(
            std::fs::read_to_string(out.join("tickets-worker.yaml")).unwrap(),
            "edited"
        );
        write(&out, &o.files(), true).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("tickets-worker.yaml")).unwrap(),
            file(&o, "tickets-worker.yaml")
        );
    }

    /// `k8s/tenants/example-*` are what `scripts/check-k8s.sh` validates:
    /// they must be this generator's output, byte for byte.
    #[test]
    fn the_committed_examples_are_what_the_generator_writes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/tenants");
        for args in EXAMPLES {
            let o = overlay(args).unwrap();
            let dir = root.join(o.tenant.as_str());
            let regenerate = format!(
                "csp tenants k8s {} --out k8s/tenants/{} --force",
                args.join(" "),
                o.tenant
            );
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}; run: {regenerate}", dir.display()))
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            on_disk.sort();
            let mut expected: Vec<String> =
                o.files().iter().map(|(n, _)| (*n).to_owned()).collect();
            expected.sort();
            assert_eq!(on_disk, expected, "run: {regenerate}");
            for (name, contents) in o.files() {
                let committed = std::fs::read_to_string(dir.join(name)).unwrap();
                assert!(
                    committed == contents,
                    "k8s/tenants/{}/{name} differs from the generator's; run: {regenerate}",
                    o.tenant
                );
            }
        }
    }
}
