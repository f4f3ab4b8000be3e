//! The actuator's settings, Spring Boot's `management.*` keys, read leniently from the
//! application's properties (numbers may be written as strings; unknown keys are Spring
//! Boot's own and left alone).

use serde_json::Value;
use stream_core::Error;

/// The endpoints the actuator serves.
pub const ENDPOINTS: &[&str] = &["health", "bindings", "prometheus", "topology", "asyncapi"];

/// `management.*` as the actuator uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `management.server.port`; `None` leaves the actuator off. `0` picks a free port.
    pub port: Option<u16>,
    /// `management.server.address` (default `0.0.0.0`).
    pub address: String,
    /// `management.endpoints.web.base-path` (default `/actuator`).
    pub base_path: String,
    /// The exposed endpoints: `management.endpoints.web.exposure.include` (default `health`,
    /// as Spring Boot; `*` for all) minus `exclude`.
    pub exposed: Vec<&'static str>,
}

fn at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |v, k| v.get(k))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A list from a YAML list or a comma-separated string.
fn list(v: Option<&Value>) -> Option<Vec<String>> {
    let items = match v? {
        Value::Array(a) => a.iter().filter_map(text).collect(),
        other => text(other)?
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect(),
    };
    Some(items)
}

fn invalid(key: &str, message: String) -> Error {
    Error::Extension {
        extension: key.to_owned(),
        message,
    }
}

impl Settings {
    /// Reads the settings from the application's properties.
    pub fn from_properties(root: &Value) -> Result<Settings, Error> {
        let port = match at(root, "management.server.port") {
            None | Some(Value::Null) => None,
            Some(v) => Some(text(v).and_then(|t| t.parse::<u16>().ok()).ok_or_else(|| {
                invalid(
                    "management.server.port",
                    "expected a port number (0-65535)".to_owned(),
                )
            })?),
        };
        let address = at(root, "management.server.address")
            .and_then(text)
            .unwrap_or_else(|| "0.0.0.0".to_owned());
        let base_path = at(root, "management.endpoints.web.base-path")
            .and_then(text)
            .unwrap_or_else(|| "/actuator".to_owned());
        let base_path = format!("/{}", base_path.trim_matches('/'));
        // Route syntax (`{`, `*`) or empty segments would make the router panic.
        let segment_ok = |seg: &str| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        };
        if base_path != "/" && !base_path[1..].split('/').all(segment_ok) {
            return Err(invalid(
                "management.endpoints.web.base-path",
                "expected a path such as /actuator (letters, digits, - _ . ~ between slashes)"
                    .to_owned(),
            ));
        }
        let include = list(at(root, "management.endpoints.web.exposure.include"))
            .unwrap_or_else(|| vec!["health".to_owned()]);
        let exclude =
            list(at(root, "management.endpoints.web.exposure.exclude")).unwrap_or_default();
        let wanted = |e: &str| {
            let named = |l: &[String]| l.iter().any(|i| i == "*" || i == e);
            named(&include) && !exclude.iter().any(|x| x == e)
        };
        Ok(Settings {
            port,
            address,
            base_path,
            exposed: ENDPOINTS.iter().copied().filter(|e| wanted(e)).collect(),
        })
    }

    /// Whether `endpoint` is exposed.
    pub fn exposes(&self, endpoint: &str) -> bool {
        self.exposed.contains(&endpoint)
    }

    /// Whether an exposed endpoint reads the metrics (`prometheus`, and `topology`'s counters).
    pub fn reads_metrics(&self) -> bool {
        self.exposes("prometheus") || self.exposes("topology")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn off_by_default_and_springs_defaults() {
        let s = Settings::from_properties(&json!({})).unwrap();
        assert_eq!(s.port, None);
        assert_eq!(s.base_path, "/actuator");
        assert_eq!(s.exposed, ["health"]);
    }

    #[test]
    fn reads_port_exposure_and_base_path_leniently() {
        let s = Settings::from_properties(&json!({"management": {
            "server": {"port": "8081"},
            "endpoints": {"web": {"base-path": "manage/", "exposure": {"include": "*", "exclude": ["prometheus"]}}}
        }}))
        .unwrap();
        assert_eq!(s.port, Some(8081));
        assert_eq!(s.base_path, "/manage");
        assert_eq!(s.exposed, ["health", "bindings", "topology", "asyncapi"]);
    }

    #[test]
    fn a_base_path_is_a_plain_path_or_an_error_at_its_key() {
        let base = |p: &str| {
            Settings::from_properties(
                &json!({"management": {"endpoints": {"web": {"base-path": p}}}}),
            )
        };
        assert_eq!(base("/").unwrap().base_path, "/");
        assert_eq!(base("ops/manage").unwrap().base_path, "/ops/manage");
        for bad in ["/a{b}", "/x/*rest", "/a//b", "/a b"] {
            let e = base(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("management.endpoints.web.base-path: expected a path"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_bad_port_is_an_error_at_its_key() {
        let e = Settings::from_properties(&json!({"management": {"server": {"port": "http"}}}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("management.server.port: expected a port"),
            "{e}"
        );
    }
}
