//! Watching: the kinds a scan lists, kept up to date with kube-runtime watchers, in one store
//! that analysers read whole.
//!
//! Why it is built this way:
//! - One watcher per resource, all polled from one stream: a watcher lists first (paginated),
//!   then watches from the list's resourceVersion with bookmarks, resumes from the last version
//!   it saw when a connection drops, and lists again when the server answers 410 Gone. A
//!   relist replaces that resource's objects at once (`InitDone`), so objects deleted while
//!   the watch was away disappear and nothing is reported twice.
//! - Errors back off exponentially (kube-runtime's default: 0.8 s up to 30 s) and become
//!   warnings, said once until the message changes: a kind the user may not watch costs that
//!   kind, not the watch.
//! - Each change says whether anything an analyser reads changed: a Pod whose status moved
//!   from Pending to Running, or any object whose `resourceVersion` or `managedFields` alone
//!   changed, needs no new analysis. The store still keeps the latest version of it.
//! - The store is complete ([`Update::Synced`]) once every resource has been listed, or has
//!   failed, or has not answered within the request timeout: analysing a half-listed cluster
//!   would report a Service as open before the policy that closes it has arrived.

use crate::discover::Resource;
use crate::list::{api, object};
use crate::{connect, warning, ClusterError, ClusterOptions, CLUSTER_PATH};
use futures::stream::{BoxStream, SelectAll};
use futures::StreamExt;
use jackstop_core::{InputError, Object};
use kube::api::DynamicObject;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use serde_json::Value;
use std::borrow::Borrow;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a watch request stays open before the watcher renews it (the API server's
/// default upper bound is 30 to 60 minutes; kube-runtime's default is 290 s).
const WATCH_TIMEOUT_SECS: u32 = 290;

/// What [`ClusterWatch::next`] reports.
#[derive(Debug)]
pub enum Update {
    /// Objects of `resource` were added, changed, deleted or listed again; `changed` says
    /// whether anything an analyser reads changed.
    Objects {
        resource: usize,
        changed: bool,
        applied: usize,
        deleted: usize,
    },
    /// The server expired the watch's resourceVersion (410 Gone): the watcher lists again.
    Relisting { resource: usize },
    /// A watch connection broke; the watcher resumes from the last resourceVersion it saw.
    /// Said as a warning only when it happens again before anything arrives.
    Interrupted { resource: usize },
    /// A resource could not be listed or watched; the watcher retries with backoff. Said once
    /// until the message changes.
    Warning { resource: usize, error: InputError },
    /// Every resource has been listed once, or has failed, or did not answer in time: the store
    /// is as complete as it will get. Reported once.
    Synced,
}

type Events = BoxStream<'static, (usize, Result<Event<DynamicObject>, watcher::Error>)>;

/// Every resource's watcher, and the objects they have delivered so far, each held as a `T`:
/// an [`Object`] for analysers that read the store whole, or an `Arc<Object>` for a holder that
/// keeps views of it (the webhook), which then share the objects instead of copying them.
pub struct ClusterWatch<T = Object> {
    streams: SelectAll<Events>,
    store: Store<T>,
    /// The API server's address, for messages.
    pub server: String,
    /// What is watched.
    pub resources: Vec<Resource>,
    /// Warnings from discovery (groups that could not be read).
    pub warnings: Vec<InputError>,
    settled: Vec<bool>,
    synced_said: bool,
    deadline: Instant,
    timeout: Duration,
    last_error: Vec<Option<String>>,
}

impl<T: From<Object> + Borrow<Object>> ClusterWatch<T> {
    /// Connects, discovers, and starts a watcher per resource. Fails as a scan does: no
    /// kubeconfig, or a server that answers no discovery.
    pub async fn start(opts: &ClusterOptions) -> Result<ClusterWatch<T>, ClusterError> {
        // A watch connection is silent between events and bookmarks: it may stay quiet up to
        // the watch's own timeout.
        let read_timeout = Duration::from_secs(u64::from(WATCH_TIMEOUT_SECS) + 5);
        let found = connect(opts, read_timeout).await?;
        let config = watcher::Config::default()
            .timeout(WATCH_TIMEOUT_SECS)
            .page_size(opts.page_size.max(1));
        let mut streams = SelectAll::new();
        for (i, r) in found.resources.iter().enumerate() {
            let api = api(&found.client, r, opts.namespace.as_deref());
            let s: Events = watcher::watcher(api, config.clone())
                .default_backoff()
                .map(move |e| (i, e))
                .boxed();
            streams.push(s);
        }
        let n = found.resources.len();
        Ok(ClusterWatch {
            streams,
            store: Store::new(n),
            server: found.server,
            resources: found.resources,
            warnings: found.warnings,
            settled: vec![false; n],
            synced_said: false,
            deadline: Instant::now() + opts.timeout,
            timeout: opts.timeout,
            last_error: vec![None; n],
        })
    }

    /// The objects as of now, for the analysers.
    pub fn objects(&self) -> &[T] {
        &self.store.objects
    }

    /// Applies `trim` to every object as it arrives, before it is held or digested: a holder
    /// that never reads some fields (the webhook's view: `status`, `managedFields`) does not
    /// keep them, and one that needs no object of a sort (Pods that a template it holds
    /// describes) holds none (`trim` answers false). An object that changed only in what was
    /// trimmed away is not replaced.
    pub fn trim_with(&mut self, trim: fn(&mut Object) -> bool) {
        self.store.trim = Some(trim);
    }

    /// Whether every resource has been listed once (or given up on for now).
    pub fn is_synced(&self) -> bool {
        self.synced_said
    }

    /// The next thing that happened; `None` only when there is nothing to watch.
    pub async fn next(&mut self) -> Option<Update> {
        loop {
            if !self.synced_said && self.settled.iter().all(|s| *s) {
                self.synced_said = true;
                return Some(Update::Synced);
            }
            let waiting = !self.synced_said;
            let event = tokio::select! {
                e = self.streams.next() => e,
                _ = tokio::time::sleep_until(self.deadline), if waiting => {
                    if let Some(u) = self.give_up_waiting() {
                        return Some(u);
                    }
                    continue;
                }
            };
            let (i, result) = event?;
            match result {
                Ok(ev) => {
                    self.last_error[i] = None;
                    if let Some(u) = self.apply(i, ev) {
                        return Some(u);
                    }
                }
                Err(e) => {
                    self.settled[i] = true;
                    if let Some(u) = self.failed(i, e) {
                        return Some(u);
                    }
                }
            }
        }
    }

    /// The initial listing took longer than the request timeout: resources not yet listed
    /// are warned about and no longer waited for (their watchers go on).
    fn give_up_waiting(&mut self) -> Option<Update> {
        let slow: Vec<usize> = (0..self.settled.len())
            .filter(|i| !self.settled[*i])
            .collect();
        for i in &slow {
            self.settled[*i] = true;
        }
        let first = *slow.first()?;
        let names: Vec<String> = slow.iter().map(|i| self.resources[*i].display()).collect();
        Some(Update::Warning {
            resource: first,
            error: warning(format!(
                "{} not listed within {:?}; analysing without them for now (their watches go on)",
                names.join(", "),
                self.timeout
            )),
        })
    }

    fn apply(&mut self, i: usize, ev: Event<DynamicObject>) -> Option<Update> {
        let r = &self.resources[i];
        match ev {
            Event::Init => {
                self.store.pending[i] = Some(Vec::new());
                None
            }
            Event::InitApply(o) => {
                // Trimmed as it arrives: a first listing of a large cluster is not held whole.
                if let Some(o) = object(o, r, &self.store.path).and_then(|o| self.store.admit(o)) {
                    self.store.pending[i].get_or_insert_with(Vec::new).push(o);
                }
                None
            }
            Event::InitDone => {
                self.settled[i] = true;
                let listed = self.store.pending[i].take().unwrap_or_default();
                let applied = listed.len();
                let (changed, deleted) = self.store.replace(i, listed);
                Some(Update::Objects {
                    resource: i,
                    changed,
                    applied,
                    deleted,
                })
            }
            Event::Apply(o) => {
                let o = object(o, r, &self.store.path)?;
                let changed = self.store.upsert(i, o);
                Some(Update::Objects {
                    resource: i,
                    changed,
                    applied: 1,
                    deleted: 0,
                })
            }
            Event::Delete(o) => {
                let o = object(o, r, &self.store.path)?;
                let changed = self.store.remove(&Store::<T>::key(i, &o));
                Some(Update::Objects {
                    resource: i,
                    changed,
                    applied: 0,
                    deleted: usize::from(changed),
                })
            }
        }
    }

    fn failed(&mut self, i: usize, e: watcher::Error) -> Option<Update> {
        let r = self.resources[i].display();
        if let watcher::Error::WatchError(s) = &e {
            if s.code == 410 {
                return Some(Update::Relisting { resource: i });
            }
        }
        let interrupted = matches!(e, watcher::Error::WatchFailed(_));
        let message = match &e {
            watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s))
                if s.code == 403 =>
            {
                format!("{r} not watched: forbidden ({})", s.message)
            }
            watcher::Error::InitialListFailed(e) => format!("{r} not listed: {e}"),
            watcher::Error::WatchStartFailed(e) => format!("{r} watch not started: {e}"),
            watcher::Error::WatchFailed(e) => format!("{r} watch interrupted: {e}"),
            e => format!("{r}: {e}"),
        };
        if self.last_error[i].as_deref() == Some(message.as_str()) {
            return None;
        }
        let first = self.last_error[i].is_none();
        self.last_error[i] = Some(message.clone());
        if interrupted && first {
            return Some(Update::Interrupted { resource: i });
        }
        Some(Update::Warning {
            resource: i,
            error: warning(format!("{message} (retrying)")),
        })
    }
}

/// (resource, namespace, name)
type Key = (usize, String, String);

/// The watched objects in one vector (what analysers read), with each one's key and a digest
/// of what analysers read in it.
struct Store<T> {
    objects: Vec<T>,
    keys: Vec<Key>,
    digests: Vec<u64>,
    index: HashMap<Key, usize>,
    /// Per resource: the objects of a relist in progress.
    pending: Vec<Option<Vec<Object>>>,
    path: Arc<str>,
    trim: Option<fn(&mut Object) -> bool>,
}

impl<T: From<Object> + Borrow<Object>> Store<T> {
    fn new(resources: usize) -> Store<T> {
        Store {
            objects: Vec::new(),
            keys: Vec::new(),
            digests: Vec::new(),
            index: HashMap::new(),
            pending: vec![None; resources],
            path: Arc::from(CLUSTER_PATH),
            trim: None,
        }
    }

    fn key(resource: usize, o: &Object) -> Key {
        (
            resource,
            o.namespace.clone().unwrap_or_default(),
            o.name.clone(),
        )
    }

    /// An object as it is held: trimmed, or `None` when it is not held at all.
    fn admit(&self, mut o: Object) -> Option<Object> {
        match self.trim {
            Some(trim) => trim(&mut o).then_some(o),
            None => Some(o),
        }
    }

    /// Adds or replaces one object as it arrived; whether what analysers read changed.
    fn upsert(&mut self, resource: usize, o: Object) -> bool {
        let key = Self::key(resource, &o);
        match self.admit(o) {
            Some(o) => self.put(key, o),
            None => self.remove(&key),
        }
    }

    /// Adds or replaces one admitted object; whether what analysers read changed.
    fn put(&mut self, key: Key, o: Object) -> bool {
        let d = digest(&o.body);
        match self.index.get(&key) {
            Some(&at) => {
                let changed = self.digests[at] != d;
                // Trimmed, an unchanged object is the same as the one held, which views
                // may share: it stays.
                if changed || self.trim.is_none() {
                    self.objects[at] = T::from(o);
                    self.digests[at] = d;
                }
                changed
            }
            None => {
                self.index.insert(key.clone(), self.objects.len());
                self.objects.push(T::from(o));
                self.keys.push(key);
                self.digests.push(d);
                true
            }
        }
    }

    /// Removes one object; whether it was there.
    fn remove(&mut self, key: &Key) -> bool {
        let Some(at) = self.index.remove(key) else {
            return false;
        };
        self.objects.swap_remove(at);
        self.keys.swap_remove(at);
        self.digests.swap_remove(at);
        if at < self.objects.len() {
            self.index.insert(self.keys[at].clone(), at);
        }
        true
    }

    /// Replaces every object of a resource by a fresh listing (admitted as it arrived):
    /// whether anything analysers read changed, and how many objects went away.
    fn replace(&mut self, resource: usize, listed: Vec<Object>) -> (bool, usize) {
        let mut changed = false;
        let mut keep = std::collections::HashSet::with_capacity(listed.len());
        for o in listed {
            let key = Self::key(resource, &o);
            keep.insert(key.clone());
            changed |= self.put(key, o);
        }
        let gone: Vec<Key> = self
            .keys
            .iter()
            .filter(|k| k.0 == resource && !keep.contains(*k))
            .cloned()
            .collect();
        for k in &gone {
            self.remove(k);
        }
        (changed || !gone.is_empty(), gone.len())
    }
}

/// A digest of an object without what changes on every write or only with its state:
/// `metadata.resourceVersion`, `metadata.managedFields` and `status`.
fn digest(body: &Value) -> u64 {
    struct HashWriter(DefaultHasher);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = HashWriter(DefaultHasher::new());
    if let Value::Object(m) = body {
        for (k, v) in m {
            match k.as_str() {
                "status" => {}
                "metadata" => {
                    if let Value::Object(meta) = v {
                        for (mk, mv) in meta {
                            if mk != "resourceVersion" && mk != "managedFields" {
                                h.0.write(mk.as_bytes());
                                let _ = serde_json::to_writer(&mut h, mv);
                            }
                        }
                    }
                }
                _ => {
                    h.0.write(k.as_bytes());
                    let _ = serde_json::to_writer(&mut h, v);
                }
            }
        }
    }
    h.0.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jackstop_core::{FieldLines, Source};
    use serde_json::json;

    fn pod(name: &str, image: &str, phase: &str, rv: &str) -> Object {
        Object::from_value(
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv},
                "spec": {"containers": [{"name": "c", "image": image}]},
                "status": {"phase": phase}
            }),
            Source::default(),
            FieldLines::default(),
        )
        .unwrap()
    }

    #[test]
    fn state_and_versions_are_not_changes_but_are_kept() {
        let mut s = Store::<Object>::new(1);
        assert!(s.upsert(0, pod("a", "x", "Pending", "1")));
        assert!(!s.upsert(0, pod("a", "x", "Running", "2")));
        assert_eq!(s.objects[0].str_at("status.phase"), Some("Running"));
        assert!(s.upsert(0, pod("a", "y", "Running", "3")));
        assert_eq!(s.objects.len(), 1);
    }

    /// Trimmed and shared (the webhook's store): what is trimmed is not held, and an object
    /// that changed only there stays the same allocation, which views share.
    #[test]
    fn a_trimmed_store_keeps_unchanged_objects_shared() {
        fn trim(o: &mut Object) -> bool {
            if let Some(b) = o.body.as_object_mut() {
                b.remove("status");
            }
            o.name != "skipped"
        }
        let mut s = Store::<Arc<Object>>::new(1);
        s.trim = Some(trim);
        assert!(s.upsert(0, pod("a", "x", "Pending", "1")));
        let held = s.objects[0].clone();
        assert!(held.at("status").is_none());
        assert!(!s.upsert(0, pod("a", "x", "Running", "2")));
        assert!(Arc::ptr_eq(&held, &s.objects[0]), "status only: kept");
        assert!(s.upsert(0, pod("a", "y", "Running", "3")));
        assert!(!Arc::ptr_eq(&held, &s.objects[0]), "a new image: replaced");
        assert_eq!(
            s.objects[0].body["spec"]["containers"][0]["image"],
            json!("y")
        );
        assert!(!s.upsert(0, pod("skipped", "x", "Running", "1")));
        assert_eq!(s.objects.len(), 1, "not held");
    }

    #[test]
    fn removal_keeps_the_index_right() {
        let mut s = Store::<Object>::new(1);
        for n in ["a", "b", "c"] {
            s.upsert(0, pod(n, "x", "Running", "1"));
        }
        assert!(s.remove(&(0, "ns".into(), "a".into())));
        assert!(!s.remove(&(0, "ns".into(), "a".into())));
        for (k, at) in &s.index {
            assert_eq!(&s.keys[*at], k);
            assert_eq!(s.objects[*at].name, k.2);
        }
        assert_eq!(s.objects.len(), 2);
    }

    #[test]
    fn a_relist_drops_what_was_deleted_meanwhile_and_only_that() {
        let mut s = Store::<Object>::new(2);
        s.upsert(0, pod("a", "x", "Running", "1"));
        s.upsert(0, pod("b", "x", "Running", "1"));
        s.upsert(1, pod("other", "x", "Running", "1"));
        let (changed, gone) = s.replace(0, vec![pod("a", "x", "Running", "9")]);
        assert!(changed);
        assert_eq!(gone, 1);
        let names: Vec<&str> = s.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"a") && names.contains(&"other"));
        let (changed, gone) = s.replace(0, vec![pod("a", "x", "Succeeded", "10")]);
        assert!(!changed, "the same listing again is no change");
        assert_eq!(gone, 0);
    }
}
