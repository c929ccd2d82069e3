//! `jackstop rules`: the built-in catalogue at a glance.

use crate::cli::{Format, RulesArgs};
use crate::EXIT_CLEAN;
use comfy_table::presets::NOTHING;
use comfy_table::Table;
use jackstop_catalogue::Catalogue;

pub fn run(args: RulesArgs) -> anyhow::Result<u8> {
    let rules = &Catalogue::builtin().rules;
    match args.format {
        Some(Format::Json) | Some(Format::Sarif) => {
            let all: Vec<_> = rules.iter().collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        _ => {
            let mut table = Table::new();
            table
                .load_preset(NOTHING)
                .set_header(vec!["ID", "SEVERITY", "CATEGORY", "TITLE"]);
            for r in rules.iter() {
                table.add_row(vec![
                    r.id.clone(),
                    r.severity.to_string(),
                    r.category.to_string(),
                    r.title.clone(),
                ]);
            }
            println!("{table}");
            println!(
                "\n`jackstop explain ID` shows a rule's description, remediation and references."
            );
        }
    }
    Ok(EXIT_CLEAN)
}
