//! The verdict over one runnable's hits, and why.
//!
//! Strong signals make a miner on their own: a miner program, its telltale flags, a stratum
//! URL or method, a miner configuration, a mining pool together with a wallet or pool port.
//! Medium signals (a pool domain, a Monero wallet) alone only make the workload suspicious;
//! weak ones (a pool port, an Ethereum address, the word "mining") never count alone, and a
//! generic flag like `-o` or `-u` counts only next to a miner program. Download-and-execute
//! tradecraft without a miner is suspicious.

use super::evidence::Located;
use jackstop_catalogue::indicators::{Family, Strength};

/// What the hits of one runnable amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A miner, shown by what it runs (JS-MIN-001).
    Miner,
    /// A miner shown by its image alone (JS-MIN-003).
    MinerImage,
    /// Download-and-execute or hidden payloads, no miner proven (JS-SUS-001).
    Tradecraft,
    /// A pool or wallet alone (JS-SUS-002).
    PoolOrWallet,
}

impl Kind {
    pub fn rule(self) -> &'static str {
        match self {
            Kind::Miner => "JS-MIN-001",
            Kind::MinerImage => "JS-MIN-003",
            Kind::Tradecraft => "JS-SUS-001",
            Kind::PoolOrWallet => "JS-SUS-002",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub kind: Kind,
    /// The hits that decided it, strongest first (index into the runnable's hits).
    pub deciding: Vec<usize>,
    /// One line: the reasons, by strength.
    pub why: String,
    /// A publicly reported malicious image was among the hits.
    pub reported_image: bool,
}

fn is_image(f: Family) -> bool {
    matches!(f, Family::MinerImage | Family::MaliciousImage)
}

fn is_tradecraft(f: Family) -> bool {
    matches!(f, Family::Tradecraft | Family::KernelThreadName)
}

/// Decides, or `None` when nothing counts.
pub fn decide(hits: &[Located]) -> Option<Verdict> {
    let has = |f: Family| hits.iter().any(|h| h.hit.family == f);
    // A miner program that is run (or an image named for one): a name merely mentioned (a
    // detection rule listing `xmrig`) does not make `-o` or `-u` a miner's flags.
    let program_present = hits.iter().any(|h| {
        matches!(
            h.hit.family,
            Family::MinerProgram | Family::MinerImage | Family::MaliciousImage
        ) && h.hit.strength == Strength::Strong
    });
    // Strong hits in what the workload runs (not its image, not tradecraft).
    let mut strong: Vec<usize> = hits
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            h.hit.strength == Strength::Strong
                && !is_image(h.hit.family)
                && !is_tradecraft(h.hit.family)
        })
        .map(|(i, _)| i)
        .collect();
    if program_present {
        strong.extend(
            hits.iter()
                .enumerate()
                .filter(|(_, h)| h.hit.family == Family::GenericMinerFlag)
                .map(|(i, _)| i),
        );
    }
    // Combinations of medium and weak signals that are as good as a strong one.
    let pool = first(hits, Family::PoolDomain);
    let wallet = first(hits, Family::MoneroWallet);
    let port = first(hits, Family::PoolPort);
    let eth = first(hits, Family::EthereumAddress);
    let mut combo: Vec<(usize, usize, &'static str)> = Vec::new();
    if let Some(p) = pool {
        if let Some(w) = wallet.or(eth) {
            combo.push((p, w, "a mining pool with a wallet"));
        } else if let Some(pt) = port {
            combo.push((p, pt, "a mining pool on a pool port"));
        }
    } else if let (Some(w), Some(pt)) = (wallet, port) {
        combo.push((w, pt, "a Monero wallet with a pool address"));
    }
    let images: Vec<usize> = hits
        .iter()
        .enumerate()
        .filter(|(_, h)| is_image(h.hit.family) && h.hit.strength == Strength::Strong)
        .map(|(i, _)| i)
        .collect();
    let reported_image = has(Family::MaliciousImage);

    if !strong.is_empty() || !combo.is_empty() {
        let mut deciding = strong.clone();
        let mut reasons: Vec<String> = Vec::new();
        for &i in &strong {
            push_unique(&mut reasons, hits[i].hit.what.clone());
        }
        for (a, b, what) in &combo {
            deciding.push(*a);
            deciding.push(*b);
            push_unique(&mut reasons, what.to_string());
        }
        for &i in &images {
            deciding.push(i);
            push_unique(&mut reasons, hits[i].hit.what.clone());
        }
        dedup_keep_order(&mut deciding);
        return Some(Verdict {
            kind: Kind::Miner,
            deciding,
            why: format!("miner: {}", reasons.join("; ")),
            reported_image,
        });
    }
    if !images.is_empty() {
        let reasons: Vec<String> = images.iter().map(|&i| hits[i].hit.what.clone()).collect();
        return Some(Verdict {
            kind: Kind::MinerImage,
            deciding: images,
            why: format!("miner image: {}", reasons.join("; ")),
            reported_image,
        });
    }
    // A renamed miner shows only its command line: a pool address on a pool port with the
    // generic pool flags (`-o host:3333 -u user -p x`).
    let generic: Vec<usize> = hits
        .iter()
        .enumerate()
        .filter(|(_, h)| h.hit.family == Family::GenericMinerFlag)
        .map(|(i, _)| i)
        .collect();
    let distinct_generic: std::collections::HashSet<&str> =
        generic.iter().map(|&i| hits[i].hit.id.as_str()).collect();
    let miner_like = port.is_some() && distinct_generic.len() >= 3;
    let tradecraft: Vec<usize> = hits
        .iter()
        .enumerate()
        .filter(|(_, h)| is_tradecraft(h.hit.family) && h.hit.strength >= Strength::Medium)
        .map(|(i, _)| i)
        .collect();
    let mut medium: Vec<usize> = [pool, wallet].into_iter().flatten().collect();
    if miner_like {
        medium.extend(port);
        medium.extend(&generic);
    }
    if !tradecraft.is_empty() {
        let mut deciding = tradecraft;
        deciding.extend(&medium);
        let mut reasons = Vec::new();
        for &i in &deciding {
            push_unique(&mut reasons, hits[i].hit.what.clone());
        }
        return Some(Verdict {
            kind: Kind::Tradecraft,
            deciding,
            why: format!("suspicious, no miner proven: {}", reasons.join("; ")),
            reported_image,
        });
    }
    if !medium.is_empty() {
        let mut reasons = Vec::new();
        if miner_like {
            reasons.push("a miner-like command line (pool flags with a pool port)".to_string());
        }
        for &i in &medium {
            push_unique(&mut reasons, hits[i].hit.what.clone());
        }
        return Some(Verdict {
            kind: Kind::PoolOrWallet,
            deciding: medium,
            why: format!("suspicious, no miner proven: {}", reasons.join("; ")),
            reported_image,
        });
    }
    None
}

fn first(hits: &[Located], f: Family) -> Option<usize> {
    hits.iter().position(|h| h.hit.family == f)
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

fn dedup_keep_order(v: &mut Vec<usize>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|i| seen.insert(*i));
}
