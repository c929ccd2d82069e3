//! A ValidatingAdmissionPolicy evaluator for the tests: the exported expressions compiled and
//! run by the `cel` crate with kube-rs's Kubernetes CEL libraries (kube-cel), with the
//! bindings the API server gives (`object`, `oldObject`, `request`, `variables`), the policy's
//! match rules and match conditions, and the API server's cost formula for the regexes.

#![allow(dead_code)]

use jackstop_policy::miners::{Matcher, Target};
use jackstop_policy::{Catalogue, PolicyDef};
use kube_cel::cel::{self, Context, Program, Value};
use kube_cel::KubeCelExt;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub struct Compiled {
    pub def: PolicyDef,
    conditions: Vec<(String, Program)>,
    variables: Vec<(String, Program)>,
    validations: Vec<(Program, Option<Program>)>,
    /// Per validation: (pattern length, is a text check, number of `contains` forms).
    costs: Vec<Option<(Target, Matcher)>>,
}

/// Every expression of every policy, compiled; panics with the expression that does not.
pub fn compile_all(cat: &Catalogue) -> Vec<Compiled> {
    let (checks, _) = jackstop_policy::miners::checks(cat);
    jackstop_policy::policies(cat)
        .into_iter()
        .map(|def| {
            let c = |e: &str| {
                Program::compile(e).unwrap_or_else(|err| panic!("{}: {e}: {err}", def.name))
            };
            Compiled {
                conditions: def
                    .match_conditions
                    .iter()
                    .map(|(n, e)| (n.clone(), c(e)))
                    .collect(),
                variables: def
                    .variables
                    .iter()
                    .map(|(n, e)| (n.clone(), c(e)))
                    .collect(),
                validations: def
                    .validations
                    .iter()
                    .map(|v| (c(&v.expression), v.message_expression.as_deref().map(c)))
                    .collect(),
                costs: def
                    .validations
                    .iter()
                    .map(|v| {
                        checks
                            .iter()
                            .find(|c| c.id == v.id)
                            .map(|c| (c.target, c.matcher.clone()))
                    })
                    .collect(),
                def,
            }
        })
        .collect()
}

/// What one policy did with one request.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub matched: bool,
    /// (validation id, rules, message) of each failed validation.
    pub denied: Vec<(String, Vec<String>, String)>,
    /// Evaluation errors (with failurePolicy Fail, each denies).
    pub errors: Vec<String>,
    /// The API server's runtime cost of the regex and substring checks (an estimate by its
    /// formula), the costliest validation's, and the sum.
    pub max_validation_cost: u64,
    pub cost: u64,
}

impl Outcome {
    pub fn denies(&self) -> bool {
        !self.denied.is_empty() || !self.errors.is_empty()
    }
}

fn to_cel(v: &Json) -> Value {
    cel::to_value(v).expect("JSON converts to CEL")
}

/// Whether the policy's resource rules match the request (operation, group, resource and
/// subresource), as `matchConstraints` does.
fn matches_rules(def: &PolicyDef, req: &Json) -> bool {
    let op = req["operation"].as_str().unwrap_or("");
    let group = req["resource"]["group"].as_str().unwrap_or("");
    let mut resource = req["resource"]["resource"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if let Some(s) = req["subResource"].as_str().filter(|s| !s.is_empty()) {
        resource = format!("{resource}/{s}");
    }
    let ns = req["namespace"].as_str().unwrap_or("");
    if ns == "kube-system" {
        return false; // the binding's namespaceSelector
    }
    def.resource_rules.iter().any(|r| {
        r.operations
            .as_ref()
            .unwrap()
            .iter()
            .any(|o| o == op || o == "*")
            && r.api_groups
                .as_ref()
                .unwrap()
                .iter()
                .any(|g| g == group || g == "*")
            && r.resources
                .as_ref()
                .unwrap()
                .iter()
                .any(|x| *x == resource || x == "*")
    })
}

/// The `request` variable: the AdmissionRequest without the objects, with the string fields
/// the API server always sets.
fn request_var(req: &Json) -> Json {
    let mut r = req.clone();
    let m = r.as_object_mut().unwrap();
    m.remove("object");
    m.remove("oldObject");
    for k in ["name", "namespace", "subResource"] {
        if !m.get(k).is_some_and(Json::is_string) {
            m.insert(k.into(), json!(""));
        }
    }
    r
}

fn regex_cost(texts: &[String], re_len: usize) -> u64 {
    let per = (re_len as u64).div_ceil(4);
    texts
        .iter()
        .map(|t| (1 + t.len() as u64).div_ceil(10) * per)
        .sum()
}

/// Runs one compiled policy over one AdmissionRequest (the `request` of a review, as JSON).
pub fn evaluate(c: &Compiled, req: &Json) -> Outcome {
    let mut out = Outcome::default();
    if !matches_rules(&c.def, req) {
        return out;
    }
    out.matched = true;
    let mut ctx = Context::default().with_all();
    ctx.add_variable_from_value("object", to_cel(&req["object"]));
    ctx.add_variable_from_value(
        "oldObject",
        to_cel(req.get("oldObject").unwrap_or(&Json::Null)),
    );
    ctx.add_variable_from_value("request", to_cel(&request_var(req)));
    for (name, p) in &c.conditions {
        match p.execute(&ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                out.matched = false;
                return out;
            }
            other => {
                out.errors.push(format!("matchCondition {name}: {other:?}"));
                return out;
            }
        }
    }
    let mut vars: HashMap<String, Value> = HashMap::new();
    let mut texts: Vec<String> = Vec::new();
    let mut images: Vec<String> = Vec::new();
    let run = regex::Regex::new(jackstop_policy::B64_RUN).unwrap();
    for (name, p) in &c.variables {
        ctx.add_variable_from_value("variables", vars.clone());
        match p.execute(&ctx) {
            Ok(v) => {
                if name == "texts" || name == "images" {
                    let list: Vec<String> = match &v {
                        Value::List(l) => l
                            .iter()
                            .map(|x| match x {
                                Value::String(s) => s.to_string(),
                                other => panic!("{name}: not a string: {other:?}"),
                            })
                            .collect(),
                        other => panic!("{name}: not a list: {other:?}"),
                    };
                    if name == "texts" {
                        texts = list;
                    } else {
                        images = list;
                    }
                }
                vars.insert(name.clone(), v);
            }
            Err(e) => {
                out.errors.push(format!("variable {name}: {e}"));
                return out;
            }
        }
    }
    ctx.add_variable_from_value("variables", vars);
    for (i, (p, msg)) in c.validations.iter().enumerate() {
        let v = &c.def.validations[i];
        if let Some((target, matcher)) = &c.costs[i] {
            let on = if *target == Target::Text {
                &texts
            } else {
                &images
            };
            let cost = match matcher {
                Matcher::Regex(re) => regex_cost(on, re.len()),
                // The runs scan, then the regex over the runs.
                Matcher::Base64(re) => {
                    let runs: Vec<String> = on
                        .iter()
                        .flat_map(|t| run.find_iter(t).map(|m| m.as_str().to_string()))
                        .collect();
                    regex_cost(on, jackstop_policy::B64_RUN.len()) + regex_cost(&runs, re.len())
                }
            };
            out.cost += cost;
            out.max_validation_cost = out.max_validation_cost.max(cost);
        }
        match p.execute(&ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let m = match msg.as_ref().map(|m| m.execute(&ctx)) {
                    Some(Ok(Value::String(s))) => s.to_string(),
                    Some(other) => panic!("{}: messageExpression: {other:?}", v.id),
                    None => v.message.clone(),
                };
                out.denied.push((v.id.clone(), v.rules.clone(), m));
            }
            other => out.errors.push(format!("{}: {other:?}", v.id)),
        }
    }
    out
}

/// Every policy over one request.
pub fn evaluate_all(policies: &[Compiled], req: &Json) -> Vec<Outcome> {
    policies.iter().map(|c| evaluate(c, req)).collect()
}

/// The rules some policy denied the request for (errors count as a denial: `ERROR`).
pub fn denied_rules(outcomes: &[Outcome]) -> Vec<String> {
    let mut r: Vec<String> = Vec::new();
    for o in outcomes {
        for (_, rules, _) in &o.denied {
            r.extend(rules.iter().cloned());
        }
        if !o.errors.is_empty() {
            r.push(format!("ERROR {:?}", o.errors));
        }
    }
    r.sort();
    r.dedup();
    r
}

/// A CREATE request for an object, as the API server would send it.
pub fn create_request(o: &Json) -> Json {
    let api = o["apiVersion"].as_str().unwrap_or("v1");
    let kind = o["kind"].as_str().unwrap_or("");
    let (group, version) = match api.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api),
    };
    json!({
        "uid": "0",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": plural(kind)},
        "name": o["metadata"]["name"].as_str().unwrap_or(""),
        "namespace": o["metadata"]["namespace"].as_str().unwrap_or("default"),
        "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
        "object": o,
        "dryRun": false
    })
}

/// The resource name of a kind (the kinds the policies match, and the usual rule otherwise).
pub fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    match k.as_str() {
        "networkpolicy" => "networkpolicies".into(),
        k if k.ends_with("policy") => format!("{}ies", &k[..k.len() - 1]),
        k if k.ends_with('s') => format!("{k}es"),
        k => format!("{k}s"),
    }
}

/// A review fixture's request.
pub fn fixture(name: &str) -> Json {
    let p = repo()
        .join("tests/fixtures/admission/reviews")
        .join(format!("{name}.json"));
    let v: Json = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v["request"].clone()
}

pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures/admission/reviews"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
}
