//! `jackstop explain RULE`: one rule's documentation.

use crate::cli::{ExplainArgs, Format};
use crate::EXIT_CLEAN;
use anyhow::bail;
use jackstop_catalogue::Catalogue;

pub fn run(args: ExplainArgs) -> anyhow::Result<u8> {
    let catalogue = Catalogue::builtin();
    let Some(rule) = catalogue.rules.get(&args.rule) else {
        let ids: Vec<&str> = catalogue.rules.iter().map(|r| r.id.as_str()).collect();
        bail!("no rule {:?}; known rules: {}", args.rule, ids.join(", "));
    };
    let interfaces: Vec<&str> = catalogue
        .interfaces
        .iter()
        .filter(|i| i.rule == rule.id)
        .map(|i| i.name.as_str())
        .collect();
    if matches!(args.format, Some(Format::Json) | Some(Format::Sarif)) {
        let mut v = serde_json::to_value(rule)?;
        v["interfaces"] = serde_json::json!(interfaces);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(EXIT_CLEAN);
    }
    println!("{}: {}", rule.id, rule.title);
    println!(
        "category: {}    severity: {} (at most)",
        rule.category, rule.severity
    );
    if !rule.tags.is_empty() {
        println!("tags: {}", rule.tags.join(", "));
    }
    println!("\n{}\n", rule.description.trim());
    if !interfaces.is_empty() {
        println!("Interfaces: {}\n", interfaces.join(", "));
    }
    println!("Remediation:\n  {}\n", rule.remediation.trim());
    println!("References:");
    for r in &rule.references {
        match &r.url {
            Some(u) => println!("  {} {} {}", r.kind, r.id, u),
            None => println!("  {} {}", r.kind, r.id),
        }
    }
    Ok(EXIT_CLEAN)
}
