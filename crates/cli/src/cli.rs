//! Command-line flags.

use clap::{Args, Parser, Subcommand, ValueEnum};
use jackstop_analysers::burst::BurstSettings;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "jackstop",
    version,
    about = "Find the open doors and the cryptominers in machine-learning Kubernetes clusters",
    long_about = "jackstop finds ML dashboards (Kubeflow, Jupyter, Argo, Ray, the Kubernetes Dashboard, MLflow, \
TensorBoard) that anyone outside the cluster can reach without logging in, with the whole path from the \
internet to the interface as evidence, and the cryptominers started through them: in every container, \
pipeline step, notebook, training job and Ray job, after decoding base64 and hex payloads, and bursts of \
workloads created at once.\n\nExit codes: 0 no finding at or above --fail-on; 1 at least one; \
2 could not do its job (bad arguments, no readable input)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse manifests offline: files, directories (recursive) and `-` for stdin.
    Scan(Box<ScanArgs>),
    /// List the built-in rules.
    Rules(RulesArgs),
    /// Show one rule's documentation.
    Explain(ExplainArgs),
    /// Watch a live cluster and report each finding as it appears, changes or goes.
    Watch(Box<WatchArgs>),
    /// Find the attack in Kubernetes audit logs (audit.k8s.io/v1 JSON lines or EventList,
    /// plain or gzip; `-` for stdin).
    Audit(Box<AuditArgs>),
    /// Write one reviewable patch file per fix for what a scan finds (files, or --cluster),
    /// into --out DIR; applied only with --apply (after a server-side dry run).
    Fix(Box<FixArgs>),
    /// Validating admission webhook (AdmissionReview v1 over HTTPS): deny or warn on changes
    /// that start miners or open a dashboard to outside, by the same rules as `scan`.
    Webhook(Box<WebhookArgs>),
    /// Kubernetes-native admission policies (ValidatingAdmissionPolicy + Binding, CEL) for the
    /// rules a per-object policy can enforce, for clusters that will not run the webhook.
    Policy(PolicyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Never colour the table (NO_COLOR is honoured too).
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files, directories or `-` (stdin). Directories are walked for .yaml, .yml and .json,
    /// skipping .git, target and node_modules.
    #[arg(
        value_name = "PATH",
        required_unless_present = "cluster",
        conflicts_with = "cluster"
    )]
    pub paths: Vec<String>,
    /// Read a live cluster instead of files (read-only; Secrets are never read).
    #[arg(long)]
    pub cluster: bool,
    #[command(flatten)]
    pub live: ClusterArgs,
    /// With --cluster: also write what was read as one `kind: List` file that
    /// `jackstop scan FILE` reads back offline, with the same findings.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Exit 1 when a finding is at or above this severity (`none`: never).
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = ["critical", "high", "medium", "low", "info", "none"])]
    pub fail_on: String,
    /// Skip files matching this glob during directory walks (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Refuse files larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_file_size: u64,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// How to reach a live cluster (`scan --cluster`, `watch --cluster`).
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// With --cluster: the kubeconfig file [default: KUBECONFIG, ~/.kube/config, in-cluster].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: the kubeconfig context [default: the current one].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// With --cluster: only this namespace (cluster-scoped kinds are still read).
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// With --cluster: longest wait for one API request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub request_timeout: u64,
}

/// What is analysed and reported, the same for every input.
#[derive(Debug, Args)]
pub struct AnalysisArgs {
    /// Exceptions file [default: .jackstopignore when it exists].
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// Report only findings at or above this severity.
    #[arg(long, value_name = "SEVERITY", value_parser = ["critical", "high", "medium", "low", "info"])]
    pub min_severity: Option<String>,
    /// Run only these analysers (repeatable): `exposure` (open doors) and `miners` (miners,
    /// suspicious tradecraft and bursts). Default: all.
    #[arg(long = "analyser", value_name = "NAME", value_parser = ["exposure", "miners"])]
    pub analysers: Vec<String>,
    /// Burst detection: creations this close together belong to one burst (e.g. 5m, 90s, 1h).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_window)]
    pub burst_window: i64,
    /// Burst detection: a burst across namespaces needs at least this many workloads...
    #[arg(long, value_name = "N", default_value_t = BurstSettings::default().min_workloads)]
    pub burst_min_workloads: usize,
    /// ... in at least this many namespaces.
    #[arg(long, value_name = "N", default_value_t = BurstSettings::default().min_namespaces)]
    pub burst_min_namespaces: usize,
    /// Burst detection: or this many workloads of one image repository within the window, in
    /// at least two namespaces.
    #[arg(long, value_name = "N", default_value_t = BurstSettings::default().min_same_image)]
    pub burst_min_same_image: usize,
    /// Burst detection: also ignore workloads in this namespace (repeatable; platform
    /// namespaces such as kube-system, istio-system and kubeflow are always ignored).
    #[arg(long, value_name = "NAMESPACE")]
    pub burst_ignore_namespace: Vec<String>,
}

/// `jackstop watch --cluster`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Watch a live cluster (required: it is the only source a watch has today).
    #[arg(long, required = true)]
    pub cluster: bool,
    #[command(flatten)]
    pub live: ClusterArgs,
    /// Output: `jsonl` (one JSON object per line) or `table` (one readable line per finding)
    /// [default: table on a terminal, jsonl otherwise].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<StreamFormat>,
    /// Never colour the lines (NO_COLOR is honoured too).
    #[arg(long)]
    pub no_color: bool,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address (`none`: do not).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: String,
    /// After a change, wait this long for more before analysing (a burst arrives as many
    /// changes in a few seconds), in milliseconds; analysis runs at least every 5 s while
    /// changes keep coming.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub settle_ms: u64,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// `jackstop audit PATH...` or `jackstop audit serve`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Audit log files (JSON lines or EventList, plain or gzip), directories of them (read in
    /// name order: rotated logs before the live one), or `-` for stdin (a file named `serve`
    /// is `./serve`).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<String>,
    /// Output format [default: table on a terminal, json otherwise]; `jsonl` writes each
    /// finding as soon as it is made.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<AuditFormat>,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Never colour the table (NO_COLOR is honoured too).
    #[arg(long)]
    pub no_color: bool,
    /// Exit 1 when a finding is at or above this severity (`none`: never).
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = ["critical", "high", "medium", "low", "info", "none"])]
    pub fail_on: String,
    /// Report only findings at or above this severity.
    #[arg(long, value_name = "SEVERITY", value_parser = ["critical", "high", "medium", "low", "info"])]
    pub min_severity: Option<String>,
    /// Exceptions file [default: .jackstopignore when it exists].
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// Only events at or after this time (RFC 3339, e.g. 2021-06-08T00:00:00Z, or a duration
    /// before now, e.g. 24h).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339, or a duration before now).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    #[command(flatten)]
    pub burst: AuditBurstArgs,
    /// A longer line (one event) is skipped and reported.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_event_size: usize,
}

/// The burst rule's settings, for files and for the webhook backend.
#[derive(Debug, Args)]
pub struct AuditBurstArgs {
    /// Bursts: creations by one identity this close together belong to one burst.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_window)]
    pub burst_window: i64,
    /// Bursts: at least this many workloads...
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub burst_min_workloads: usize,
    /// ... in at least this many namespaces.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub burst_min_namespaces: usize,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Be the API server's audit webhook backend (--audit-webhook-config-file): take
    /// EventList batches over HTTPS, analyse each event once, write findings as JSON lines;
    /// metrics on a side port. Stops cleanly on SIGTERM or Ctrl-C.
    Serve(Box<AuditServeArgs>),
}

/// `jackstop audit serve`.
#[derive(Debug, Args)]
pub struct AuditServeArgs {
    /// Take batches on this address (HTTPS).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: String,
    /// Server certificate chain (PEM), re-read when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_cert: PathBuf,
    /// Server private key (PEM), re-read when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_key: PathBuf,
    /// Require a client certificate signed by this CA (PEM) on every connection.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` with one of the tokens in this file (one per
    /// line), re-read when it changes. With --client-ca both are required.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address, plain HTTP
    /// (`none`: do not).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9465")]
    pub metrics_listen: String,
    /// Output: `jsonl` (one finding per line) or `table` (readable lines) [default: table on a
    /// terminal, jsonl otherwise].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<StreamFormat>,
    /// Append the findings to FILE instead of writing them to stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Never colour the lines (NO_COLOR is honoured too).
    #[arg(long)]
    pub no_color: bool,
    /// Report only findings at or above this severity.
    #[arg(long, value_name = "SEVERITY", value_parser = ["critical", "high", "medium", "low", "info"])]
    pub min_severity: Option<String>,
    /// Exceptions file [default: .jackstopignore when it exists].
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    #[command(flatten)]
    pub burst: AuditBurstArgs,
    /// A larger request is refused (413). The API server's batches are at most 10 MiB by
    /// default (--audit-webhook-truncate-max-batch-size).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_body_size: usize,
    /// Each request must be read and analysed within this (a slow body gets 408, a busy
    /// analysis 503; the API server retries).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Requests read or analysed at once; more wait their turn.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub max_in_flight: usize,
    /// Hold bursts open this long past their window for late batches (the API server sends a
    /// batch up to --audit-webhook-batch-max-wait, 30 s by default, after its events).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub flush_grace: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let secs = parse_window(s)?;
    u64::try_from(secs)
        .map(std::time::Duration::from_secs)
        .map_err(|_| format!("{s:?}: a duration must not be negative"))
}

/// Formats of `jackstop audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Jsonl,
    Sarif,
}

/// Formats of streaming commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamFormat {
    Table,
    Jsonl,
}

fn parse_window(s: &str) -> Result<i64, String> {
    jackstop_analysers::burst::parse_window(s)
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format (table or json).
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A rule id, e.g. JS-EXP-001.
    pub rule: String,
    /// Output format (table or json).
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
}

/// `jackstop fix PATH... --out DIR` or `jackstop fix --cluster --out DIR [--apply]`.
#[derive(Debug, Args)]
pub struct FixArgs {
    /// Files, directories or `-` (stdin), read as `scan` reads them.
    #[arg(
        value_name = "PATH",
        required_unless_present = "cluster",
        conflicts_with = "cluster"
    )]
    pub paths: Vec<String>,
    /// Read a live cluster instead of files (read-only unless --apply).
    #[arg(long)]
    pub cluster: bool,
    #[command(flatten)]
    pub live: ClusterArgs,
    /// Write the fix files into this directory (created if missing; earlier jackstop fix
    /// files in it are replaced).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: PathBuf,
    /// With --cluster: send the fixes to the cluster, after a server-side dry run of every one
    /// of them has passed. Files with placeholders are not applied.
    #[arg(long)]
    pub apply: bool,
    /// Keep LoadBalancer Services, limited to these client ranges, instead of ClusterIP
    /// (repeatable; e.g. 203.0.113.0/24).
    #[arg(long, value_name = "CIDR")]
    pub allow_cidr: Vec<String>,
    /// The OpenID Connect issuer whose tokens the Istio ingress gateway requires (https URL);
    /// without it the gateway fix has placeholders and a TODO.
    #[arg(long, value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// With --oidc-issuer: where its signing keys are [default: the issuer's discovery document].
    #[arg(long, value_name = "URL", requires = "oidc_issuer")]
    pub oidc_jwks_uri: Option<String>,
    /// With --oidc-issuer: an audience the token must have (repeatable).
    #[arg(long, value_name = "AUDIENCE", requires = "oidc_issuer")]
    pub oidc_audience: Vec<String>,
    /// With --oidc-issuer: the client registered with the provider, for fixes that log
    /// browsers in (Envoy Gateway OIDC on Gateway API routes); without it those files have a
    /// placeholder and a TODO.
    #[arg(long, value_name = "ID", requires_all = ["oidc_issuer", "oidc_client_secret"])]
    pub oidc_client_id: Option<String>,
    /// With --oidc-client-id: the Secret (key client-secret) holding the client's secret, in
    /// the namespace of each route.
    #[arg(long, value_name = "SECRET", requires = "oidc_client_id")]
    pub oidc_client_secret: Option<String>,
    /// The external authentication URL written on ingress-nginx Ingresses, and the address of
    /// the forwardAuth Middleware written for Traefik (e.g.
    /// http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth; Traefik expands no $host)
    /// [default: oauth2-proxy's pattern, with a TODO].
    #[arg(long, value_name = "URL")]
    pub ingress_auth_url: Option<String>,
    /// With --ingress-auth-url: where ingress-nginx sends browsers to sign in.
    #[arg(long, value_name = "URL")]
    pub ingress_auth_signin: Option<String>,
    /// Stop workloads with suspicious findings (download-and-execute, hidden payloads) at high
    /// or above too, not only proven miners.
    #[arg(long)]
    pub stop_suspicious: bool,
    /// An egress NetworkPolicy for every ML namespace (Kubeflow profiles, namespaces with
    /// notebooks, workflows, training or Ray jobs), not only those with a miner.
    #[arg(long)]
    pub network_policy: bool,
    /// Summary format [default: table on a terminal, json otherwise].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<FixFormat>,
    /// Exit 1 when a finding is at or above this severity (`none`: never), fixed or not.
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = ["critical", "high", "medium", "low", "info", "none"])]
    pub fail_on: String,
    /// Skip files matching this glob during directory walks (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Refuse files larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_file_size: u64,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// Formats of the `fix` summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FixFormat {
    Table,
    Json,
}

/// `jackstop webhook`.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Take AdmissionReviews on this address (HTTPS).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: String,
    /// Server certificate chain (PEM), re-read when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_cert: PathBuf,
    /// Server private key (PEM), re-read when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_key: PathBuf,
    /// Require a client certificate signed by this CA (PEM): the API server's, when its
    /// admission configuration gives it one.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// What each rule does, per namespace, and who is exempt (YAML, re-read when it changes)
    /// [default: enforce at high and above, warn below, nobody exempt].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Keep a view of the live cluster (watched) to judge changes that depend on other
    /// objects: is anything authenticating in front of this Service?
    #[arg(long, conflicts_with = "objects")]
    pub cluster: bool,
    #[command(flatten)]
    pub live: ClusterArgs,
    /// A fixed cluster view from manifests instead of --cluster (offline, tests).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub objects: Vec<String>,
    /// Serve /metrics (Prometheus), /healthz and /readyz on this address, plain HTTP
    /// (`none`: do not). Ready once the cluster view is built.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9466")]
    pub metrics_listen: String,
    /// Decision log: `jsonl` (one JSON object per decision) or `table` [default: table on a
    /// terminal, jsonl otherwise].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<StreamFormat>,
    /// Append the decision log to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Never colour the lines (NO_COLOR is honoured too).
    #[arg(long)]
    pub no_color: bool,
    /// Log every decision, not only those with findings or exemptions.
    #[arg(long)]
    pub log_all: bool,
    /// A larger AdmissionReview is refused (413).
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    pub max_body_size: usize,
    /// A review must be read and judged within this (408/503 after); keep it under the
    /// webhook's timeoutSeconds.
    #[arg(long, value_name = "DURATION", default_value = "8s", value_parser = parse_duration)]
    pub review_timeout: std::time::Duration,
    /// Reviews judged at once; more wait their turn.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_in_flight: usize,
    /// Threads that serve and judge reviews. One (the default) serves 1,000 reviews a second
    /// with most of a core to spare; each more costs its own matcher caches (1.2 to 1.5 MB
    /// resident once warm, in three runs) and hands reviews between threads (on a 2-core
    /// machine two took about a fifth more CPU a review, with no steady gain in p99). Add
    /// replicas rather than threads.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write the ValidatingAdmissionPolicies and their Bindings (admissionregistration.k8s.io/v1,
    /// Kubernetes 1.30+) as multi-document YAML, for `kubectl apply -f`.
    Export(PolicyExportArgs),
}

/// What a binding does when a validation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyAction {
    /// Refuse the request (validationActions [Deny]).
    Deny,
    /// Admit it with a warning kubectl prints ([Warn]).
    Warn,
    /// Admit it and record the failure in the audit log ([Audit]).
    Audit,
}

#[derive(Debug, Args)]
pub struct PolicyExportArgs {
    /// Only these rules (comma-separated or repeated), e.g. `--rules JS-MIN-001,JS-EXP-001`.
    #[arg(long, value_delimiter = ',', value_name = "RULE")]
    pub rules: Vec<String>,
    /// What the bindings do with a failed validation.
    #[arg(long, value_enum, default_value = "deny")]
    pub action: PolicyAction,
    /// A namespace the bindings leave out (repeatable); kube-system always is.
    #[arg(long = "exclude-namespace", value_name = "NAMESPACE")]
    pub exclude_namespaces: Vec<String>,
    /// Write the YAML to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}
