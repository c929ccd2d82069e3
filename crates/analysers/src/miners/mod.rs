//! Finding the miners: every container-like thing a resource will run ([`crate::workloads`]) is
//! matched against the indicator catalogue, after decoding what it hides in base64 or hex, and
//! a verdict that explains itself becomes a finding on the top-level resource. ConfigMaps and
//! non-Kubernetes documents (an XMRig `config.json`, a compose file) are matched too, and the
//! creation times of all workloads feed burst detection ([`crate::burst`]).

mod context;
pub mod decode;
mod evidence;
mod verdict;

use crate::burst::{self, BurstSettings, Member};
use crate::workloads::{self, RunText, Runnable, TextRole};
use crate::Analyser;
use context::{ml_latest, ml_reasons, ProfileNamespaces};
use decode::Limits;
use evidence::{excerpt, Located};
use jackstop_catalogue::indicators::IndicatorSet;
use jackstop_catalogue::Catalogue;
use jackstop_core::object::DOCUMENT_KIND;
use jackstop_core::{Category, Finding, InputError, Location, Object, Severity};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::OnceLock;
use verdict::{Kind, Verdict};

/// Settings of the workload analysis (`jackstop scan --burst-*`).
#[derive(Debug, Clone, Default)]
pub struct MinerSettings {
    pub burst: BurstSettings,
    pub decode: Limits,
}

/// Miners, suspicious tradecraft and bursts in workloads, ConfigMaps and documents.
#[derive(Default)]
pub struct MinerAnalyser {
    pub settings: MinerSettings,
}

/// Most hits listed in one finding's evidence.
const MAX_EVIDENCE_HITS: usize = 12;

fn kinds() -> &'static [&'static str] {
    static KINDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KINDS.get_or_init(|| {
        let mut k: Vec<&'static str> = workloads::KINDS.to_vec();
        for extra in ["ConfigMap", "Namespace", "Profile", DOCUMENT_KIND] {
            if !k.contains(&extra) {
                k.push(extra);
            }
        }
        k
    })
}

impl Analyser for MinerAnalyser {
    fn name(&self) -> &'static str {
        "miners"
    }

    fn kinds(&self) -> &'static [&'static str] {
        kinds()
    }

    fn analyse(&self, objects: &[Object], catalogue: &Catalogue) -> Vec<Finding> {
        self.analyse_noted(objects, catalogue).0
    }

    /// The findings, and the analysis limits that were hit (so that nothing is silently left
    /// unread: the CLI lists them under `errors`).
    fn analyse_noted(
        &self,
        objects: &[Object],
        catalogue: &Catalogue,
    ) -> (Vec<Finding>, Vec<InputError>) {
        let mut notes = Vec::new();
        let findings = self.findings(objects, catalogue, &mut notes);
        (findings, notes)
    }
}

impl MinerAnalyser {
    fn findings(
        &self,
        objects: &[Object],
        catalogue: &Catalogue,
        notes: &mut Vec<InputError>,
    ) -> Vec<Finding> {
        let set = &catalogue.indicators;
        let profiles = ProfileNamespaces::from_objects(objects);
        let extraction = workloads::extract(objects);
        // A ConfigMap that lives elsewhere is normal in manifests; shapes that could not be
        // read and limits that were hit are worth an entry.
        for (o, n) in &extraction.notes {
            if !n.contains("is not in the input") {
                notes.push(note(o, n));
            }
        }
        let mut findings = Vec::new();
        // Miner verdicts per top-level owner, for burst severity.
        let mut miner_owners: HashMap<*const Object, bool> = HashMap::new();
        for r in &extraction.runnables {
            let (hits, decode_notes) = evidence::collect(r, set, &self.settings.decode);
            for n in decode_notes {
                notes.push(note(r.owner, &n));
            }
            let Some(v) = verdict::decide(&hits) else {
                continue;
            };
            if matches!(v.kind, Kind::Miner | Kind::MinerImage) {
                miner_owners.insert(r.owner as *const Object, true);
            }
            findings.push(runnable_finding(r, &v, &hits, set, &profiles));
        }
        for o in objects {
            match o.kind.as_str() {
                "ConfigMap" => {
                    findings.extend(config_map_finding(o, set, &self.settings.decode, notes))
                }
                k if k == DOCUMENT_KIND => {
                    findings.extend(document_finding(o, set, &self.settings.decode, notes))
                }
                _ => {}
            }
        }
        // Bursts over the top-level workloads (not ConfigMaps or pipeline specs, which are
        // not created in a cluster as workloads).
        let mut members: Vec<Member<'_>> = Vec::new();
        let mut index: HashMap<*const Object, usize> = HashMap::new();
        for r in &extraction.runnables {
            if r.owner.kind == "PipelineSpec" {
                continue;
            }
            let key = r.owner as *const Object;
            let i = *index.entry(key).or_insert_with(|| {
                members.push(Member {
                    owner: r.owner,
                    images: Vec::new(),
                    miner: miner_owners.contains_key(&key),
                    ml_latest: false,
                });
                members.len() - 1
            });
            if let Some(img) = &r.image {
                if !members[i].images.contains(img) {
                    members[i].images.push(img.clone());
                }
                members[i].ml_latest |= ml_latest(img, set);
            }
        }
        findings.extend(burst::detect(&members, &self.settings.burst));
        findings
    }
}

/// A limit the analysis hit, as an error entry naming the resource and field.
fn note(o: &Object, message: &str) -> InputError {
    InputError {
        path: o.source.path.to_string(),
        line: Some(o.source.line).filter(|l| *l > 0),
        column: None,
        message: format!("{}: not fully analysed: {message}", o.display()),
    }
}

fn location(o: &Object, field: Option<&str>) -> Location {
    Location {
        path: o.source.path.to_string(),
        line: field.map_or(o.source.line, |f| o.line_of(f)),
        field: field.filter(|f| !f.is_empty()).map(str::to_string),
        template: o.source.template.as_deref().map(str::to_string),
    }
}

/// Evidence lines for hits: the deciding ones first, then the rest, at most a dozen; each
/// decoded payload is shown once, before the hits found in it. Built with `push_str` rather
/// than `format!` and deduplicated against the (at most a dozen) lines already listed rather
/// than through a hash set: this runs for every denied review in the webhook.
fn hit_lines(hits: &[Located], deciding: &[usize]) -> Vec<String> {
    let mut order: Vec<usize> = deciding.to_vec();
    order.extend((0..hits.len()).filter(|i| !deciding.contains(i)));
    let mut listed: Vec<&Located> = Vec::with_capacity(MAX_EVIDENCE_HITS);
    let mut decoded_shown: Vec<&str> = Vec::new();
    let mut lines = Vec::with_capacity(MAX_EVIDENCE_HITS + 2);
    for (n, &i) in order.iter().enumerate() {
        let h = &hits[i];
        let same = |l: &&Located| {
            l.hit.id == h.hit.id && l.hit.matched == h.hit.matched && l.field == h.field
        };
        if listed.iter().any(same) {
            continue;
        }
        if listed.len() == MAX_EVIDENCE_HITS {
            lines.push(format!(
                "... and up to {} more indicator hit(s)",
                order.len() - n
            ));
            break;
        }
        let matched = excerpt(&h.hit.matched, 120);
        let mut line = String::with_capacity(
            h.hit.what.len() + matched.len() + h.field.len() + h.label.len() + 40,
        );
        for part in [
            &h.hit.what,
            ": `",
            &matched,
            "` in ",
            &h.field,
            " (",
            &h.label,
            ")",
        ] {
            line.push_str(part);
        }
        if let Some(d) = &h.decoded {
            if !decoded_shown.contains(&d.as_str()) {
                decoded_shown.push(d);
                lines.push(format!("Payload in {}: {d}", h.field));
            }
            line.push_str(", in the decoded payload");
        }
        lines.push(line);
        listed.push(h);
    }
    lines
}

fn runnable_finding(
    r: &Runnable<'_>,
    v: &Verdict,
    hits: &[Located],
    set: &IndicatorSet,
    profiles: &ProfileNamespaces,
) -> Finding {
    let o = r.owner;
    let what = if r.name.is_empty() {
        r.field.clone()
    } else {
        format!("{} ({})", r.name, r.field)
    };
    let mut evidence = vec![format!("Verdict: {}", v.why)];
    evidence.push(format!(
        "Runs: {what}{}",
        r.image
            .as_ref()
            .map(|i| format!(", image {i}"))
            .unwrap_or_default()
    ));
    evidence.extend(hit_lines(hits, &v.deciding));
    let ml = ml_reasons(r, set, profiles);
    let (severity, title) = match v.kind {
        Kind::Miner | Kind::MinerImage => {
            let mut raise = Vec::new();
            if !ml.is_empty() {
                raise.push(format!("disguised as ML work: it {}", ml.join(", ")));
            }
            if v.reported_image {
                raise.push("the image is named in public cryptojacking reports".into());
            }
            let sev = if raise.is_empty() {
                Severity::High
            } else {
                evidence.push(format!("Severity raised to critical: {}", raise.join("; ")));
                Severity::Critical
            };
            let program = hits
                .iter()
                .find_map(|h| h.hit.program.clone())
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            let title = if v.kind == Kind::Miner {
                format!("Workload runs a cryptominer{program}")
            } else {
                format!("Workload runs a known cryptomining image{program}")
            };
            (sev, title)
        }
        Kind::Tradecraft => {
            let title = "Workload downloads and executes code or hides its payload".to_string();
            // Only an ML image or a GPU raises it: pipeline steps and notebooks install tools
            // all day, but a TensorFlow or GPU container has no reason to fetch and run one.
            let compute: Vec<&String> = ml
                .iter()
                .filter(|w| {
                    w.starts_with("runs in a ") && w.contains(" image (") || *w == "requests GPUs"
                })
                .collect();
            if compute.is_empty() {
                (Severity::Medium, title)
            } else {
                evidence.push(format!(
                    "Severity raised to high: an ML workload that {}",
                    compute
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                (Severity::High, title)
            }
        }
        Kind::PoolOrWallet => (
            Severity::Medium,
            "Workload names a mining pool or a Monero wallet".to_string(),
        ),
    };
    let field = v
        .deciding
        .first()
        .map(|&i| hits[i].field.clone())
        .unwrap_or_else(|| r.field.clone());
    let remediation = match v.kind {
        Kind::Miner | Kind::MinerImage => format!(
            "{}   # then find who created it (audit log) and how (jackstop scan for exposed dashboards)",
            delete_command(o)
        ),
        _ => format!(
            "{}   # read the command in the evidence; delete the workload if nobody on the team wrote it",
            get_command(o)
        ),
    };
    Finding {
        rule: v.kind.rule().into(),
        category: match v.kind {
            Kind::Miner | Kind::MinerImage => Category::Miner,
            _ => Category::Suspicious,
        },
        severity,
        title,
        resource: o.resource(),
        location: location(o, Some(&field)),
        evidence,
        remediation,
        detail: Some(json!({
            "runnable": {"field": r.field, "name": r.name, "image": r.image, "gpu": r.gpu},
            "indicators": hits.iter().map(indicator_detail).collect::<Vec<_>>(),
        })),
    }
}

/// One hit in a finding's detail: `{id, field, matched, decoded}`, its map sized once (the
/// `json!` macro grows it key by key, rehashing twice, for every hit of a denied review).
fn indicator_detail(h: &Located) -> Value {
    let mut m = serde_json::Map::with_capacity(4);
    m.insert("id".into(), Value::String(h.hit.id.clone()));
    m.insert("field".into(), Value::String(h.field.clone()));
    m.insert("matched".into(), Value::String(h.hit.matched.clone()));
    m.insert(
        "decoded".into(),
        h.decoded.clone().map_or(Value::Null, Value::String),
    );
    Value::Object(m)
}

fn delete_command(o: &Object) -> String {
    match &o.namespace {
        _ if o.kind == DOCUMENT_KIND => format!("rm {}", o.source.path),
        _ if o.kind == "PipelineSpec" => format!(
            "Delete the pipeline {} and its runs (KFP UI or `kfp pipeline delete`), and remove {}",
            o.name, o.source.path
        ),
        Some(ns) => format!(
            "kubectl delete {} {} -n {ns}",
            o.kind.to_ascii_lowercase(),
            o.name
        ),
        None => format!("kubectl delete {} {}", o.kind.to_ascii_lowercase(), o.name),
    }
}

fn get_command(o: &Object) -> String {
    match &o.namespace {
        _ if o.kind == DOCUMENT_KIND || o.kind == "PipelineSpec" => {
            format!("Review {}", o.source.path)
        }
        Some(ns) => format!(
            "kubectl get {} {} -n {ns} -o yaml",
            o.kind.to_ascii_lowercase(),
            o.name
        ),
        None => format!(
            "kubectl get {} {} -o yaml",
            o.kind.to_ascii_lowercase(),
            o.name
        ),
    }
}

/// A ConfigMap's data as texts: a miner configuration or command in it is JS-MIN-002 on the
/// ConfigMap itself (the workloads that mount it get their own finding).
fn config_map_finding(
    o: &Object,
    set: &IndicatorSet,
    limits: &Limits,
    notes: &mut Vec<InputError>,
) -> Option<Finding> {
    let data = o.at("data")?.as_object()?;
    let texts: Vec<RunText> = data
        .iter()
        .filter_map(|(k, v)| {
            let text = v.as_str()?.to_string();
            let field = workloads::walk::join_key("data", k);
            Some(RunText {
                role: TextRole::ConfigMap,
                parts: vec![(0, field.clone())],
                field,
                text,
                label: format!("key {k}"),
            })
        })
        .collect();
    file_like_finding(o, texts, Vec::new(), set, limits, notes)
}

/// A non-Kubernetes document: every string in it (images by their key), and the whole document
/// as JSON text, for a miner configuration's shape.
fn document_finding(
    o: &Object,
    set: &IndicatorSet,
    limits: &Limits,
    notes: &mut Vec<InputError>,
) -> Option<Finding> {
    let mut texts = Vec::new();
    let mut images = Vec::new();
    walk_strings(&o.body, String::new(), 0, &mut |path, key, s| {
        if key == Some("image") {
            images.push((path.clone(), s.to_string()));
        }
        texts.push(RunText {
            role: TextRole::Other,
            parts: vec![(0, path.clone())],
            field: path,
            text: s.to_string(),
            label: "value".into(),
        });
    });
    let whole = serde_json::to_string_pretty(&o.body).unwrap_or_default();
    texts.push(RunText {
        role: TextRole::Other,
        parts: vec![(0, String::new())],
        field: String::new(),
        text: whole,
        label: "the whole document".into(),
    });
    file_like_finding(o, texts, images, set, limits, notes)
}

fn walk_strings(
    v: &Value,
    path: String,
    depth: usize,
    f: &mut dyn FnMut(String, Option<&str>, &str),
) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = workloads::walk::join_key(&path, k);
                if let Value::String(s) = v {
                    f(p, Some(k), s);
                } else {
                    walk_strings(v, p, depth + 1, f);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Value::String(s) = v {
                    f(p, None, s);
                } else {
                    walk_strings(v, p, depth + 1, f);
                }
            }
        }
        _ => {}
    }
}

fn file_like_finding(
    o: &Object,
    texts: Vec<RunText>,
    images: Vec<(String, String)>,
    set: &IndicatorSet,
    limits: &Limits,
    notes: &mut Vec<InputError>,
) -> Option<Finding> {
    let mut hits = Vec::new();
    let mut decode_notes = Vec::new();
    for (field, image) in &images {
        for hit in set.scan_image(image) {
            hits.push(Located {
                hit,
                field: field.clone(),
                label: "image".into(),
                decoded: None,
            });
        }
    }
    for t in &texts {
        evidence::scan_text(t, set, limits, &mut hits, &mut decode_notes);
    }
    for n in decode_notes {
        notes.push(note(o, &n));
    }
    // The same indicator seen in a value and again in the whole-document text counts once.
    let mut seen = std::collections::HashSet::new();
    hits.retain(|h| seen.insert((h.hit.id.clone(), h.hit.matched.clone())));
    let v = verdict::decide(&hits)?;
    if !matches!(v.kind, Kind::Miner | Kind::MinerImage) {
        return None;
    }
    let field = v
        .deciding
        .first()
        .map(|&i| hits[i].field.clone())
        .unwrap_or_default();
    let mut evidence = vec![format!("Verdict: {}", v.why)];
    evidence.extend(hit_lines(&hits, &v.deciding));
    let what = if o.kind == DOCUMENT_KIND {
        "file"
    } else {
        "ConfigMap"
    };
    Some(Finding {
        rule: "JS-MIN-002".into(),
        category: Category::Miner,
        severity: Severity::High,
        title: format!("Cryptominer configuration in a {what}"),
        resource: o.resource(),
        location: location(o, Some(&field)),
        evidence,
        remediation: match o.kind.as_str() {
            "ConfigMap" => format!(
                "{}   # and every workload that mounts it",
                delete_command(o)
            ),
            _ => format!(
                "{}   # a miner's configuration or deployment file has no place in this repository",
                delete_command(o)
            ),
        },
        detail: None,
    })
}
