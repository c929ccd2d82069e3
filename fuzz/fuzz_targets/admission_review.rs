//! Any bytes as the body of an AdmissionReview, through the webhook's reading and judging, on
//! the view of the real Kubeflow install with its gateway opened (so that Service and Istio
//! changes walk real exposure paths): no panic, no hang; a body that does not read is an
//! error, never a verdict; a denial always says why; the answer always serialises, and echoes
//! the request's uid. A panic here is what the webhook would answer with HTTP 500.
//!
//! From the repository root, seeded with the webhook's review fixtures: `cargo +nightly fuzz
//! run admission_review fuzz/corpus/admission_review tests/fixtures/admission/reviews --
//! -dict=fuzz/admission.dict -rss_limit_mb=1024`.
#![no_main]

use jackstop_admission::{parse_review, response, ClusterState, Engine, Policy};
use jackstop_catalogue::Catalogue;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct World {
    engine: Engine,
    policy: Policy,
    state: ClusterState,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let cat = Catalogue::builtin();
        let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/kubeflow-platform");
        let (inputs, _) = jackstop_manifests::collect_inputs(&[corpus.to_string()], &[]);
        let mut objects =
            jackstop_manifests::read_inputs(&inputs, &Default::default()).objects;
        if let Some(gw) = objects
            .iter_mut()
            .find(|o| o.kind == "Service" && o.name == "istio-ingressgateway")
        {
            gw.body["spec"]["type"] = "LoadBalancer".into();
        }
        World {
            engine: Engine::new(cat),
            policy: Policy::default(),
            state: ClusterState::new(objects, cat),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Ok(req) = parse_review(data) else {
        return;
    };
    let verdict = w.engine.review(&req, &w.policy, &w.state);
    if !verdict.allowed {
        assert!(
            verdict.message.as_deref().is_some_and(|m| !m.is_empty()),
            "a denial without a reason: {verdict:?}"
        );
    }
    let review = response(&req, &verdict).into_review();
    let text = serde_json::to_string(&review).expect("the answer serialises");
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["response"]["uid"], req.uid.as_str());
    assert_eq!(back["response"]["allowed"], verdict.allowed);
});
