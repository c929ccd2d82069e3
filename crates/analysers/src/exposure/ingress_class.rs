//! Which controller serves an Ingress. Each controller reads its own annotations only
//! (ingress-nginx's `auth-url` means nothing to Traefik), so what authenticates an Ingress, and
//! which fix closes it, depend on it. The IngressClass the Ingress names, or the cluster's
//! default one when it names none, says so by its `spec.controller`; without the IngressClass
//! in the input, the class name is read for the controller's word (`nginx`, `alb`...).

use jackstop_core::Object;
use serde_json::Value;

/// The Ingress controllers jackstop knows the annotations of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    IngressNginx,
    AwsAlb,
    Traefik,
    Kong,
}

impl Controller {
    /// The controllers, their `spec.controller` values, their annotation prefix, the word
    /// their class names carry, and their name in words.
    const ALL: &'static [(
        Controller,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )] = &[
        (
            Controller::IngressNginx,
            "k8s.io/ingress-nginx",
            "nginx.ingress.kubernetes.io/",
            "nginx",
            "ingress-nginx",
        ),
        (
            Controller::AwsAlb,
            "ingress.k8s.aws/alb",
            "alb.ingress.kubernetes.io/",
            "alb",
            "the AWS Load Balancer Controller",
        ),
        (
            Controller::Traefik,
            "traefik.io/ingress-controller",
            "traefik.ingress.kubernetes.io/",
            "traefik",
            "Traefik",
        ),
        (
            Controller::Kong,
            "ingress-controllers.konghq.com/kong",
            "konghq.com/",
            "kong",
            "Kong",
        ),
    ];

    pub fn name(self) -> &'static str {
        Controller::ALL
            .iter()
            .find(|c| c.0 == self)
            .map_or("", |c| c.4)
    }

    /// The controller whose annotation `key` is.
    pub fn of_annotation(key: &str) -> Option<Controller> {
        Controller::ALL
            .iter()
            .find(|c| key.starts_with(c.2))
            .map(|c| c.0)
    }
}

/// What is known of the controller of an Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// By this controller: its IngressClass says so, or its class name does.
    By(Controller),
    /// By a controller jackstop knows nothing of (its IngressClass names it).
    Other(String),
    /// Not known: no IngressClass read, and a class name (or none) that names no controller.
    Unknown,
}

/// The class an Ingress names (`spec.ingressClassName`, or the older annotation), or "".
pub fn class_name(ing: &Object) -> &str {
    ing.str_at("spec.ingressClassName")
        .or_else(|| ing.annotation("kubernetes.io/ingress.class"))
        .unwrap_or("")
}

/// Whether an object is an IngressClass.
pub fn is_ingress_class(o: &Object) -> bool {
    o.kind == "IngressClass" && o.group() == "networking.k8s.io"
}

/// The IngressClass of `ing` among `classes` (others are ignored): the one it names, or the
/// default one when it names none.
pub fn class_of<'o>(
    ing: &Object,
    classes: impl IntoIterator<Item = &'o Object>,
) -> Option<&'o Object> {
    let name = class_name(ing);
    let mut classes = classes.into_iter().filter(|c| is_ingress_class(c));
    if name.is_empty() {
        classes.find(|c| {
            c.annotation("ingressclass.kubernetes.io/is-default-class")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        })
    } else {
        classes.find(|c| c.name == name)
    }
}

/// Who serves `ing`, from the IngressClasses among `classes` (others are ignored).
pub fn served<'o>(ing: &Object, classes: impl IntoIterator<Item = &'o Object>) -> Served {
    let name = class_name(ing);
    if let Some(controller) = class_of(ing, classes)
        .and_then(|c| c.at("spec.controller"))
        .and_then(Value::as_str)
    {
        return match Controller::ALL.iter().find(|c| c.1 == controller) {
            Some(c) => Served::By(c.0),
            None => Served::Other(controller.to_string()),
        };
    }
    let lower = name.to_ascii_lowercase();
    let named: Vec<Controller> = Controller::ALL
        .iter()
        .filter(|c| lower.contains(c.3))
        .map(|c| c.0)
        .collect();
    match named.as_slice() {
        [one] => Served::By(*one),
        _ => Served::Unknown,
    }
}

impl Served {
    /// Whether the controller may read the annotations of `c`: it is `c`, or it is not known.
    pub fn may_be(&self, c: Controller) -> bool {
        match self {
            Served::By(x) => *x == c,
            Served::Other(_) => false,
            Served::Unknown => true,
        }
    }

    /// The controller in words, when known.
    pub fn words(&self) -> String {
        match self {
            Served::By(c) => c.name().to_string(),
            Served::Other(c) => format!("the controller {c}"),
            Served::Unknown => "an unknown controller".into(),
        }
    }
}
