//! Reading `template.yaml`: its functions, their binaries, their API routes.

use crate::process::workspace_root;
use serde_norway::Value;
use std::collections::BTreeMap;

pub fn template() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

pub fn resources(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

/// Logical name → the workspace binary it is built from (`BuildProperties.Binary`).
pub fn function_binaries(t: &Value) -> BTreeMap<String, String> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(name, r)| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} names no BuildProperties.Binary"))
                .to_owned();
            (name, binary)
        })
        .collect()
}

/// (logical function name, method, path) of every HttpApi route.
pub fn routes(t: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, r) in resources(t) {
        let Some(events) = r["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                out.push((
                    name.clone(),
                    p["Method"].as_str().unwrap().to_owned(),
                    p["Path"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

/// (file, logical function name, result) rows of README's `events/` table (its first three
/// columns; the fourth says which commands use the file).
pub fn readme_events_table() -> Vec<(String, String, String)> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            match cells.as_slice() {
                [file, function, result, ..] if file.starts_with("`events/") => Some((
                    file.trim_matches('`').to_owned(),
                    function.trim_matches('`').to_owned(),
                    result.to_string(),
                )),
                _ => None,
            }
        })
        .collect()
}
