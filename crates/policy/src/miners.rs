//! The miner indicators as CEL: which of `indicators.yaml` can be one regular expression over
//! what a container runs, and which only the webhook can judge.
//!
//! A check is exported only when a match is a STRONG hit of the same indicator for the
//! webhook's analysis too (so that CEL never denies what the webhook allows): strong flags,
//! stratum schemes and methods, miner agent strings, the mining-algorithm flag, a miner
//! program in command position (first word of a line, after a shell operator, a launcher or
//! `sh -c`, run as `./name`, or downloaded), and, for base64-hidden payloads, the base64
//! forms of the long strong literals. Images: the reported cryptojacking images and images
//! named for a miner program or for mining.

use crate::pattern::{alternation, base64_regex, escape, translate};

use jackstop_catalogue::indicators::Strength;
use jackstop_catalogue::Catalogue;
use serde::Deserialize;

/// The catalogue file itself: the exported CEL follows the data, not a copy of it.
const INDICATORS_YAML: &str = include_str!("../../catalogue/data/indicators.yaml");

/// What a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Per container: command and args joined with spaces, each env value, the script source
    /// (Argo), a line apart; the containers of one pod spec a line apart too.
    Text,
    /// Per pod spec: its containers' image references, a line each.
    Image,
}

/// How a check matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `text.matches(regex)`.
    Regex(String),
    /// A base64 form: `text.matches(regex)`, tried only on texts with a run of 20 base64
    /// characters (a cheap test first: most texts have none).
    Base64(String),
}

/// One exported check: an indicator of the catalogue as CEL.
#[derive(Debug, Clone)]
pub struct Check {
    /// The indicator id (`flag-donate-level`), or `b64:` and the id for its base64 forms.
    pub id: String,
    /// The catalogue's indicators it stands for (several for the miner programs: one regex
    /// for all, so that the costly command-position prefix is paid once).
    pub indicators: Vec<String>,
    /// The rule a hit is reported under (JS-MIN-001 for what runs, JS-MIN-003 for images).
    pub rule: &'static str,
    pub what: String,
    pub target: Target,
    pub matcher: Matcher,
}

/// An indicator the exported policy does not check, and why.
#[derive(Debug, Clone)]
pub struct WebhookOnly {
    pub id: String,
    pub why: String,
}

#[derive(Debug, Deserialize)]
struct File {
    programs: Vec<Program>,
    launchers: Vec<String>,
    command_keys: Vec<String>,
    agents: Vec<Agent>,
    flags: Vec<Literals>,
    flag_values: Vec<Pattern>,
    schemes: Vec<Literals>,
    stratum_methods: Vec<Literals>,
    pool_domains: serde_json::Value,
    pool_ports: serde_json::Value,
    wallets: Vec<Pattern>,
    miner_configs: Vec<Pattern>,
    malicious_images: Vec<MaliciousImage>,
    miner_images: MinerImages,
    tradecraft: Vec<Pattern>,
    words: Vec<Literals>,
    generic_flags: Vec<Literals>,
}

#[derive(Debug, Deserialize)]
struct Program {
    id: String,
    names: Vec<String>,
    #[serde(default)]
    ambiguous: bool,
}

#[derive(Debug, Deserialize)]
struct Agent {
    id: String,
    literal: String,
    what: String,
}

#[derive(Debug, Deserialize)]
struct Literals {
    id: String,
    literals: Vec<String>,
    what: String,
}

#[derive(Debug, Deserialize)]
struct Pattern {
    id: String,
    what: String,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    requires_any: Vec<String>,
    #[serde(default)]
    min_distinct: usize,
    #[serde(default)]
    trusted_downgrade: bool,
}

#[derive(Debug, Deserialize)]
struct MaliciousImage {
    id: String,
    image: String,
    what: String,
}

#[derive(Debug, Deserialize)]
struct MinerImages {
    id: String,
    what: String,
    words_id: String,
    words_what: String,
    words: Vec<String>,
}

/// The most pattern bytes in one base64 validation.
const B64_CHUNK: usize = 1000;

/// Characters that end a token for the webhook's program check (`ends` in the catalogue).
const NAME_END: &str = r#"(?:$|[\t\n\r "';&|)\],`\\><])"#;
/// Characters of a path in front of a program name (`/usr/bin/`, `./`, `$HOME/`).
const PATH: &str = r"(?:[A-Za-z0-9._~$/-]{0,200}/)?";
/// What stops a token, for the webhook (white space, quotes, brackets, shell operators).
const STOP: &str = r#"[\t\n\f\r "'\[\](),;|&`<>\\{}]"#;

/// The Docker Hub prefixes an image reference may carry (`normalise_repo` in the catalogue).
const HUB: &str = r"(?:(?:docker\.io|index\.docker\.io|registry-1\.docker\.io|registry\.hub\.docker\.com)/)?(?:library/)?";

fn strength(cat: &Catalogue, id: &str) -> Option<Strength> {
    cat.indicators.describe(id).map(|(_, s, _)| s)
}

/// The regex for the miner programs in command position, run as `./name`, or downloaded.
/// Ambiguous names (`t-rex`, `excavator`) only in command position, and never continued.
fn program_regexes(
    names: &[String],
    ambiguous: &[String],
    launchers: &[String],
    keys: &[String],
) -> Vec<(&'static str, &'static str, String)> {
    let names_re = format!("(?i:{})", alternation(names));
    let amb_re = format!("(?i:{})", alternation(ambiguous));
    // An unambiguous name may go on with `-`/`_` (`xmrig-notls`): still the program.
    let tail = "(?:[-_][A-Za-z0-9_-]{0,60})?";
    let launch = format!("(?i:{})", alternation(launchers));
    // `command: x`, `command: [x`, `"entrypoint": [x`, `CMD [x` (YAML, JSON, Dockerfile text).
    let key = format!(
        "(?:^|[\\t\\n\\f\\r ])[\"']{{0,2}}(?i:{})[\"']{{0,2}}(?::(?:[\\t ]*\\[)?|[\\t ]*\\[)",
        alternation(keys)
    );
    // Where a command word starts: the text or a line (not a `\` continuation), after a shell
    // operator or `$(`, after a launcher word, or after `sh -c`.
    let position = format!(
        "(?:^|(?:^|[^\\\\\\r])\\r?\\n|[;|&`]|\\$\\(|(?:^|[\\t\\n\\r \"'\\[,])(?:{launch})[\\t ]+|(?:^|[\\t\\n\\r \"'\\[,])(?:[A-Za-z0-9._~$/-]{{0,200}}/)?(?:ba|da|z|a|k)?sh[\"',]{{0,2}}[\\t ]+[\"'\\[,]{{0,2}}-c[\"',]{{0,2}}[\\t ]+|{key})[\\t ]*[\"'\\\\]{{0,3}}"
    );
    let run = if ambiguous.is_empty() {
        format!("{names_re}{tail}")
    } else {
        format!("{names_re}{tail}|{amb_re}")
    };
    let mut forms = vec![(
        "",
        "in command position",
        format!("{position}{PATH}(?:{run}){NAME_END}"),
    )];
    // Run from the working directory.
    forms.push((
        "-dot",
        "run as ./name",
        format!("(?:^|{STOP})\\.\\.?/(?:[A-Za-z0-9._~$/-]{{0,200}}/)?{names_re}{tail}{NAME_END}"),
    ));
    // Downloaded: in a URL, or a release archive.
    forms.push((
        "-download",
        "downloaded (in a URL or a release archive)",
        format!(
        "://[^\\t\\n\\f\\r \"'\\[\\](),;|&`<>\\\\{{}}]{{0,200}}[/._~=?#%+:@!*$-]{names_re}(?:$|[^A-Za-z0-9])|(?:^|[^A-Za-z0-9]){names_re}(?:-[0-9]|(?i:\\.(?:tar|tgz|zip|gz|xz|bz2|7z|txz)))"
        ),
    ));
    forms
}

/// Every exported check, and every indicator left to the webhook with the reason.
pub fn checks(cat: &Catalogue) -> (Vec<Check>, Vec<WebhookOnly>) {
    let file: File =
        serde_saphyr::from_str(INDICATORS_YAML).expect("indicators.yaml parses (catalogue tests)");
    let mut out = Vec::new();
    let mut only = Vec::new();
    let mut left = |id: &str, why: &str| {
        only.push(WebhookOnly {
            id: id.to_string(),
            why: why.to_string(),
        })
    };
    let text = |id: &str, what: &str, regex: String| Check {
        id: id.to_string(),
        indicators: vec![id.to_string()],
        rule: "JS-MIN-001",
        what: what.to_string(),
        target: Target::Text,
        matcher: Matcher::Regex(regex),
    };
    // (indicator, what, base64 forms)
    let mut b64: Vec<(String, String, Vec<String>)> = Vec::new();

    let names = |amb: bool| -> Vec<String> {
        file.programs
            .iter()
            .filter(|p| p.ambiguous == amb)
            .flat_map(|p| p.names.iter().cloned())
            .collect()
    };
    for (suffix, how, regex) in program_regexes(
        &names(false),
        &names(true),
        &file.launchers,
        &file.command_keys,
    ) {
        out.push(Check {
            id: format!("miner-programs{suffix}"),
            indicators: file.programs.iter().map(|p| p.id.clone()).collect(),
            rule: "JS-MIN-001",
            what: format!("a miner program {how}"),
            target: Target::Text,
            matcher: Matcher::Regex(regex),
        });
    }
    for a in &file.agents {
        if strength(cat, &a.id) != Some(Strength::Strong) {
            left(&a.id, "not a strong signal alone");
            continue;
        }
        out.push(text(
            &a.id,
            &a.what,
            format!("(?:^|[^A-Za-z0-9/]){}[0-9]", escape(&a.literal)),
        ));
    }
    for f in &file.flags {
        if strength(cat, &f.id) != Some(Strength::Strong) {
            left(
                &f.id,
                "not a strong signal alone (the webhook weighs it with others)",
            );
            continue;
        }
        out.push(text(
            &f.id,
            &f.what,
            format!(
                "(?:^|[\\t\\n\\r \"'=\\[,(])(?:{})(?:$|[\\t\\n\\r \"'=,\\])])",
                alternation(&f.literals)
            ),
        ));
        for l in &f.literals {
            if l.len() >= 12 {
                // With the token boundaries the webhook asks for (` x ` or ` x=`): a continued
                // flag (`--donate-levels`) must not count.
                for end in [" ", "="] {
                    let forms = base64_regex(format!(" {l}{end}").as_bytes());
                    b64.push((f.id.clone(), f.what.clone(), forms.into_iter().collect()));
                }
            }
        }
    }
    for f in &file.flag_values {
        if strength(cat, &f.id) != Some(Strength::Strong) {
            left(&f.id, "not a strong signal alone (a generic miner flag)");
            continue;
        }
        match f.pattern.as_deref().map(translate) {
            Some(Ok(re)) => out.push(text(&f.id, &f.what, re)),
            Some(Err(e)) => left(&f.id, &format!("its pattern cannot be RE2: {}", e.0)),
            None => left(&f.id, "no pattern"),
        }
    }
    for s in &file.schemes {
        out.push(text(
            &s.id,
            &s.what,
            format!("(?:^|[^A-Za-z0-9+.-])(?i:{})://", alternation(&s.literals)),
        ));
        // ` scheme://`: a space in front, as after `-o`, so that `xstratum+tcp://` is not one.
        for l in &s.literals {
            let l = format!(" {l}://");
            if l.len() >= 12 {
                let forms = base64_regex(l.as_bytes());
                b64.push((s.id.clone(), s.what.clone(), forms.into_iter().collect()));
            }
        }
    }
    for m in &file.stratum_methods {
        if strength(cat, &m.id) != Some(Strength::Strong) {
            left(
                &m.id,
                "medium: also a plain Ethereum node RPC method (the webhook weighs it with others)",
            );
            continue;
        }
        out.push(text(
            &m.id,
            &m.what,
            format!(
                "(?:^|[^A-Za-z0-9_.])(?i:{})(?:$|[^A-Za-z0-9_])",
                alternation(&m.literals)
            ),
        ));
    }
    // Base64-hidden payloads: the forms of the long strong literals, grouped per indicator.
    let mut groups: Vec<(String, String, Vec<String>)> = Vec::new();
    for (id, what, forms) in b64 {
        match groups.iter_mut().find(|g| g.0 == id) {
            Some(g) => g.2.extend(forms),
            None => groups.push((id, what, forms)),
        }
    }
    // In validations of at most B64_CHUNK pattern bytes each: the API server's per-expression
    // cost limit applies to each, so a long alternation is split rather than made to bind.
    for (id, what, forms) in groups {
        let mut chunks: Vec<Vec<String>> = vec![Vec::new()];
        for f in forms {
            let last = chunks.last_mut().expect("one chunk");
            if !last.is_empty()
                && last.iter().map(|x| x.len() + 1).sum::<usize>() + f.len() > B64_CHUNK
            {
                chunks.push(vec![f]);
            } else {
                last.push(f);
            }
        }
        let n = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            out.push(Check {
                id: if n == 1 {
                    format!("b64:{id}")
                } else {
                    format!("b64:{id}#{}", i + 1)
                },
                indicators: vec![id.clone()],
                rule: "JS-MIN-001",
                what: format!("{what}, base64-encoded"),
                target: Target::Text,
                matcher: Matcher::Base64(chunk.join("|")),
            });
        }
    }

    for m in &file.malicious_images {
        // `account/*`: every repository of the account.
        let repo = match m.image.strip_suffix("/*") {
            Some(acct) => format!("{}/[^:@\\n]+", escape(&acct.to_ascii_lowercase())),
            None => escape(&m.image.to_ascii_lowercase()),
        };
        out.push(Check {
            id: m.id.clone(),
            indicators: vec![m.id.clone()],
            rule: "JS-MIN-003",
            what: m.what.clone(),
            target: Target::Image,
            // The whole repository (a tag or digest may follow); Docker Hub spelled any way.
            matcher: Matcher::Regex(format!("(?m)^(?i:{HUB}{repo})(?:[:@]|$)")),
        });
    }
    let unambiguous: Vec<String> = file
        .programs
        .iter()
        .filter(|p| !p.ambiguous)
        .flat_map(|p| p.names.iter().cloned())
        .collect();
    // A name as a whole part of the repository (between `/ - _ . :`), never in the tag.
    let in_repo = |names: &[String]| {
        format!(
            "(?m)^(?:[^@\\n]*/)?(?:[^/:@\\n]*[_.-])?(?i:{})(?:[-_.][^/:@\\n]*)?(?:$|[:@])|^[^@\\n]*?(?:^|[/_.:-])(?i:{})(?:[/_.:-][^/@\\n]*)?/[^/:@\\n]*(?:$|[:@])",
            alternation(names),
            alternation(names)
        )
    };
    out.push(Check {
        id: file.miner_images.id.clone(),
        indicators: vec![file.miner_images.id.clone()],
        rule: "JS-MIN-003",
        what: file.miner_images.what.clone(),
        target: Target::Image,
        matcher: Matcher::Regex(in_repo(&unambiguous)),
    });
    out.push(Check {
        id: file.miner_images.words_id.clone(),
        indicators: vec![file.miner_images.words_id.clone()],
        rule: "JS-MIN-003",
        what: file.miner_images.words_what.clone(),
        target: Target::Image,
        matcher: Matcher::Regex(in_repo(&file.miner_images.words)),
    });

    if let Some(pools) = file.pool_domains.get("pools").and_then(|p| p.as_array()) {
        for p in pools {
            if let Some(id) = p.get("id").and_then(|i| i.as_str()) {
                left(id, "medium: a pool host is a miner only with a wallet, a pool port or a miner flag (a combination the webhook weighs)");
            }
        }
    }
    if let Some(id) = file.pool_ports.get("id").and_then(|i| i.as_str()) {
        left(id, "weak alone, and its host exclusions are a second pass");
    }
    for w in &file.wallets {
        let why = if w.min_distinct > 0 {
            "medium or weak alone, and placeholders are told apart by counting distinct characters, which CEL regexes cannot"
        } else {
            "not a strong signal alone"
        };
        left(&w.id, why);
    }
    for c in &file.miner_configs {
        let why = match c.pattern.as_deref().map(translate) {
            Some(Err(e)) => format!(
                "its pattern cannot be RE2 ({}) and it needs one of {} more patterns to hold too",
                e.0,
                c.requires_any.len()
            ),
            _ => "needs a second pattern to hold too; left to the webhook".to_string(),
        };
        left(&c.id, &why);
        let _ = &c.what;
    }
    for t in &file.tradecraft {
        let why = if t.trusted_downgrade {
            "tradecraft is never a miner alone (JS-SUS-001, denied only in an ML image or with GPUs), and trusted installer hosts are a second pass"
        } else {
            "tradecraft is never a miner alone (JS-SUS-001, denied only in an ML image or with GPUs: a context the verdict weighs)"
        };
        left(&t.id, why);
        let _ = &t.what;
    }
    for w in file.words.iter().chain(&file.generic_flags) {
        left(&w.id, "weak: context only, never a verdict alone");
        let _ = (&w.literals, &w.what);
    }
    (out, only)
}

/// Why some detections are the webhook's only, in words (for the README and `--help`).
pub const WEBHOOK_ONLY: &[(&str, &str)] = &[
    ("decoded payloads", "hex and `\\x` escapes, nested and compressed payloads, and base64 beyond the long strong literals' base64 forms: CEL cannot decode safely (a failed decode is an error, and an error denies)"),
    ("combinations", "a pool with a wallet or a pool port, generic flags next to a miner image: the verdict weighs several weak or medium signals"),
    ("ML context", "JS-SUS-001 is denied only in an ML image or with GPUs, JS-SUS-002 is medium (warned, never denied)"),
    ("`$(VAR)` expansion and ConfigMaps", "env values from ConfigMaps (`envFrom`, `configMapKeyRef`, mounted files) are other objects; `$(VAR)` in command and args is checked unexpanded"),
    ("ConfigMaps and other kinds", "JS-MIN-002 (a miner configuration in a ConfigMap), and the kinds whose containers sit in lists of lists or in other shapes (Kubeflow Trainer v2 TrainJobs' runtime patches, Katib, Spark, Tekton, KFP pipelines, Argo init containers, sidecars and container sets, Ray runtime environments and Serve configs): CEL in Kubernetes has no portable flatten"),
];
