//! Live clusters: reads the Kubernetes API, read-only, into the same located objects as
//! manifests, so that every analyser runs on live objects unchanged.
//!
//! Why it is built this way:
//! - Discovery is done group by group ([`discover`]), so one broken aggregated API (a
//!   metrics-server that is down) costs that group only, as a warning, not the scan.
//! - Only the kinds the analysers read are listed, each with pagination (`limit` and
//!   `continue`), several at once; a kind the user may not list (403), that times out or
//!   answers garbage becomes an entry in `errors`, and the rest is still reported.
//! - Secrets are never listed, whatever the analysers ask for.
//! - What was read can be saved as one `kind: List` document ([`snapshot`]) that an offline
//!   `jackstop scan` reads back into the same objects, hence the same findings.

pub mod apply;
mod discover;
mod list;
pub mod snapshot;
pub mod watch;

pub use discover::Resource;

use jackstop_core::{InputError, InputStats, Object};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// What could stop a cluster scan as a whole (exit code 2): no usable kubeconfig, no client,
/// or an API server that does not answer discovery at all.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot load the kubeconfig{}: {source}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Kubeconfig {
        path: Option<PathBuf>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot build a client for the cluster: {0}")]
    Client(#[source] kube::Error),
    #[error("the API server at {server} does not answer discovery: {message}")]
    Unreachable { server: String, message: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// How to reach the cluster and what to read.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// A kubeconfig file; default: `KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig; default: its current context.
    pub context: Option<String>,
    /// Only this namespace (cluster-scoped kinds are still read).
    pub namespace: Option<String>,
    /// The kinds to list (the analysers' kinds); others are not read.
    pub kinds: HashSet<String>,
    /// Items per page.
    pub page_size: u32,
    /// Longest wait for one request.
    pub timeout: Duration,
    /// Lists in flight at once.
    pub concurrency: usize,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            kubeconfig: None,
            context: None,
            namespace: None,
            kinds: HashSet::new(),
            page_size: 500,
            timeout: Duration::from_secs(30),
            concurrency: 8,
        }
    }
}

/// What a cluster read produced: objects, and warnings for what could not be read.
#[derive(Debug, Default)]
pub struct ClusterRead {
    pub objects: Vec<Object>,
    pub errors: Vec<InputError>,
    pub stats: InputStats,
    /// The API server's address, for messages.
    pub server: String,
    /// The resources that were listed.
    pub resources: Vec<Resource>,
}

/// The path every live object's location names.
pub const CLUSTER_PATH: &str = "cluster";

/// A warning about the cluster as a whole (a kind not read, a group not discovered).
pub(crate) fn warning(message: String) -> InputError {
    InputError {
        path: CLUSTER_PATH.to_string(),
        line: None,
        column: None,
        message,
    }
}

/// Kinds never read, whatever is asked: their content is credentials.
const NEVER: &[&str] = &["Secret"];

/// Told how a cluster read goes, for a progress bar; every method does nothing by default.
pub trait Progress: Sync {
    /// Discovery found these resources to list.
    fn discovered(&self, _resources: &[Resource]) {}
    /// A page of `objects` objects of `resource` arrived.
    fn page(&self, _resource: &Resource, _objects: usize) {}
    /// `resource` is listed (or failed).
    fn listed(&self, _resource: &Resource) {}
}

/// No progress to show.
impl Progress for () {}

/// Reads the cluster on a runtime of its own (the CLI is synchronous).
pub fn read_cluster_blocking(
    opts: &ClusterOptions,
    progress: &dyn Progress,
) -> Result<ClusterRead, ClusterError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ClusterError::Runtime)?;
    rt.block_on(read_cluster_with(opts, progress))
}

/// Discovers which of the asked kinds the cluster serves, and lists them all.
pub async fn read_cluster(opts: &ClusterOptions) -> Result<ClusterRead, ClusterError> {
    read_cluster_with(opts, &()).await
}

/// [`read_cluster`], telling `progress` how it goes.
pub async fn read_cluster_with(
    opts: &ClusterOptions,
    progress: &dyn Progress,
) -> Result<ClusterRead, ClusterError> {
    let read_timeout = opts.timeout + Duration::from_secs(5);
    let found = connect(opts, read_timeout).await?;
    let mut out = ClusterRead {
        server: found.server,
        errors: found.warnings,
        ..ClusterRead::default()
    };
    progress.discovered(&found.resources);
    let (objects, errors) = list::list_all(&found.client, &found.resources, opts, progress).await;
    out.stats.documents = objects.len();
    out.stats.objects = objects.len();
    out.objects = objects;
    out.errors.extend(errors);
    out.resources = found.resources;
    Ok(out)
}

/// A client, and what discovery found.
pub(crate) struct Connected {
    pub client: kube::Client,
    pub server: String,
    pub resources: Vec<Resource>,
    pub warnings: Vec<InputError>,
}

/// Builds the client (`read_timeout`: longest silence on a connection) and discovers which of
/// the asked kinds the cluster serves.
pub(crate) async fn connect(
    opts: &ClusterOptions,
    read_timeout: Duration,
) -> Result<Connected, ClusterError> {
    let (client, server) = client(opts, read_timeout).await?;
    let wanted: HashSet<&str> = opts
        .kinds
        .iter()
        .map(String::as_str)
        .filter(|k| !NEVER.contains(k))
        .collect();
    let (resources, warnings) = discover::discover(&client, &wanted, opts.timeout)
        .await
        .map_err(|message| ClusterError::Unreachable {
            server: server.clone(),
            message,
        })?;
    Ok(Connected {
        client,
        server,
        resources,
        warnings,
    })
}

async fn client(
    opts: &ClusterOptions,
    read_timeout: Duration,
) -> Result<(kube::Client, String), ClusterError> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let kc_opts = KubeConfigOptions {
        context: opts.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config =
        match &opts.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
                    path: Some(path.clone()),
                    source: Box::new(e),
                })?;
                kube::Config::from_custom_kubeconfig(kc, &kc_opts)
                    .await
                    .map_err(|e| ClusterError::Kubeconfig {
                        path: Some(path.clone()),
                        source: Box::new(e),
                    })?
            }
            None if opts.context.is_some() => kube::Config::from_kubeconfig(&kc_opts)
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: None,
                    source: Box::new(e),
                })?,
            None => kube::Config::infer()
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: None,
                    source: Box::new(e),
                })?,
        };
    // Our own per-request timeout fires first, with a message that says so.
    config.read_timeout = Some(read_timeout);
    config.connect_timeout = Some(opts.timeout.min(Duration::from_secs(10)));
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(ClusterError::Client)?;
    Ok((client, server))
}
