//! Reading settings from the environment, with errors that name the setting.
//!
//! Each function builds its own config struct with these helpers once, at
//! cold start; a missing or malformed value stops the start with a message
//! naming the variable.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("setting {name} is required but not set")]
    Missing { name: String },
    #[error("setting {name} is malformed: {reason}")]
    Malformed { name: String, reason: String },
    #[error("settings {first} and {second} are both set; set only one")]
    Conflict { first: String, second: String },
}

impl SettingError {
    pub fn malformed(name: &str, reason: impl Display) -> Self {
        Self::Malformed {
            name: name.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Local defaults, one `KEY=VALUE` per line, applied under the process
/// environment. `cargo lambda watch` lets `[package.metadata.lambda.env]`
/// override the shell; carrying the defaults in this one variable keeps
/// "a variable set in the environment wins" true for local runs. Never set
/// in AWS.
pub const LOCAL_DEFAULTS: &str = "HUBWARP_LOCAL_DEFAULTS";

/// A source of settings: the process environment, or a map in tests.
pub struct Env {
    vars: HashMap<String, String>,
    /// Every name a config asked for, set or not: lets a test hold the SAM
    /// template's environment and the code to the same list of settings.
    asked: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Env {
    /// The process environment, with [`LOCAL_DEFAULTS`] filling the gaps.
    pub fn from_process() -> Result<Self, SettingError> {
        Self::with_local_defaults(std::env::vars().collect())
    }

    fn with_local_defaults(mut vars: HashMap<String, String>) -> Result<Self, SettingError> {
        if let Some(defaults) = vars.remove(LOCAL_DEFAULTS) {
            for (n, line) in defaults.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (key, value) = line.split_once('=').ok_or_else(|| {
                    SettingError::malformed(
                        LOCAL_DEFAULTS,
                        format!("line {} is not KEY=VALUE", n + 1),
                    )
                })?;
                let key = key.trim();
                if vars.get(key).is_none_or(|v| v.trim().is_empty()) {
                    vars.insert(key.to_string(), value.trim().to_string());
                }
            }
        }
        Ok(Self {
            vars,
            asked: Default::default(),
        })
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            asked: Default::default(),
        }
    }

    /// `base` with `extra` added and the setting `without` left out: how a
    /// function's config tests try a missing or a malformed setting.
    pub fn varied(base: &[(&str, &str)], extra: &[(&str, &str)], without: &str) -> Self {
        Self::from_pairs(
            base.iter()
                .copied()
                .filter(|(k, _)| *k != without)
                .chain(extra.iter().copied()),
        )
    }

    /// The names asked for so far, sorted.
    pub fn names_asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The value, with an empty string treated as unset.
    pub fn optional(&self, name: &str) -> Option<&str> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.insert(name.to_string());
        }
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str, SettingError> {
        self.optional(name).ok_or_else(|| SettingError::Missing {
            name: name.to_string(),
        })
    }

    /// Parses the value, or gives `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, SettingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| SettingError::malformed(name, e)),
        }
    }

    /// Like [`Env::parse_or`], and checks the value lies in `range`.
    pub fn parse_in_range<T>(
        &self,
        name: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, SettingError>
    where
        T: FromStr + PartialOrd + Display + Copy,
        T::Err: Display,
    {
        let v = self.parse_or(name, default)?;
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(SettingError::malformed(
                name,
                format!("{v} is outside {}..={}", range.start(), range.end()),
            ))
        }
    }

    /// Like [`Env::optional_url`], and required.
    pub fn required_url(&self, name: &str) -> Result<String, SettingError> {
        self.optional_url(name)?
            .ok_or_else(|| SettingError::Missing {
                name: name.to_string(),
            })
    }

    /// The URL of an API the function sends a bearer token to: `https`,
    /// unless the host is loopback (the sandboxes, a local proxy), so a
    /// mistyped `http://` never carries the token in clear.
    pub fn required_api_url(&self, name: &str) -> Result<String, SettingError> {
        self.optional_api_url(name)?
            .ok_or_else(|| SettingError::Missing {
                name: name.to_string(),
            })
    }

    /// [`Env::required_api_url`], when the setting has a default.
    pub fn optional_api_url(&self, name: &str) -> Result<Option<String>, SettingError> {
        let url = self.optional_url(name)?;
        if let Some(plain) = url.as_deref().and_then(|u| u.strip_prefix("http://"))
            && !is_loopback(plain)
        {
            return Err(SettingError::malformed(
                name,
                "must be https (http only for a loopback host): the API token travels with every call",
            ));
        }
        Ok(url)
    }

    /// An http(s) URL without trailing slash.
    pub fn optional_url(&self, name: &str) -> Result<Option<String>, SettingError> {
        let Some(raw) = self.optional(name) else {
            return Ok(None);
        };
        let rest = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"))
            .ok_or_else(|| SettingError::malformed(name, "must start with https:// or http://"))?;
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        if host.is_empty() || rest.contains(char::is_whitespace) || rest.contains('#') {
            return Err(SettingError::malformed(
                name,
                "must be an absolute URL with a host, no spaces and no fragment",
            ));
        }
        Ok(Some(raw.to_string()))
    }
}

/// Whether the authority at the start of `rest` (a URL after its scheme)
/// names this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_are_https_unless_loopback() {
        for ok in [
            "https://api.rns.ringer.tel",
            "https://10.0.0.1:8443/x",
            "http://127.0.0.1:9100",
            "http://127.0.0.2",
            "http://localhost:9101/",
            "http://[::1]:9100",
        ] {
            let env = Env::from_pairs([("WARP_API_URL", ok)]);
            assert!(env.required_api_url("WARP_API_URL").is_ok(), "{ok}");
        }
        for bad in [
            "http://api.rns.ringer.tel",
            "http://10.0.0.1:9100",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1@evil.example",
        ] {
            let env = Env::from_pairs([("HUBSPOT_API_URL", bad)]);
            let e = env.optional_api_url("HUBSPOT_API_URL").unwrap_err();
            assert!(e.to_string().contains("HUBSPOT_API_URL"), "{bad}: {e}");
            assert!(e.to_string().contains("https"), "{bad}: {e}");
        }
    }

    #[test]
    fn names_the_setting() {
        let env = Env::from_pairs([("A", "12"), ("B", "x"), ("EMPTY", "  ")]);
        assert_eq!(env.required("A"), Ok("12"));
        assert_eq!(
            env.required("EMPTY").unwrap_err().to_string(),
            "setting EMPTY is required but not set"
        );
        assert_eq!(env.parse_or("A", 5u32), Ok(12));
        assert_eq!(env.parse_or("MISSING", 5u32), Ok(5));
        let e = env.parse_or::<u32>("B", 5).unwrap_err().to_string();
        assert!(e.starts_with("setting B is malformed"), "{e}");
        let e = env
            .parse_in_range("A", 1u32, 1..=10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("12 is outside 1..=10"), "{e}");
    }

    #[test]
    fn local_defaults_fill_gaps_and_never_override() {
        let vars: HashMap<String, String> = [
            ("A", "from-shell"),
            ("EMPTY", ""),
            (
                LOCAL_DEFAULTS,
                "# comment\nA=default-a\n\nB = default-b\nEMPTY=filled\nC=x=y",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let env = Env::with_local_defaults(vars).unwrap();
        assert_eq!(env.optional("A"), Some("from-shell"));
        assert_eq!(env.optional("B"), Some("default-b"));
        assert_eq!(env.optional("EMPTY"), Some("filled"));
        assert_eq!(env.optional("C"), Some("x=y"));
        assert_eq!(env.optional(LOCAL_DEFAULTS), None);

        let bad: HashMap<String, String> =
            [(LOCAL_DEFAULTS.to_string(), "A=1\nnonsense".to_string())].into();
        let e = Env::with_local_defaults(bad).err().unwrap().to_string();
        assert!(e.contains(LOCAL_DEFAULTS) && e.contains("line 2"), "{e}");
    }

    #[test]
    fn urls() {
        let env = Env::from_pairs([
            ("OK", "https://hooks.example.com/webhooks/hubspot?x=1"),
            ("NOSCHEME", "hooks.example.com/x"),
            ("NOHOST", "https:///x"),
        ]);
        assert!(env.optional_url("OK").unwrap().is_some());
        assert!(env.optional_url("NOSCHEME").is_err());
        assert!(env.optional_url("NOHOST").is_err());
        assert_eq!(env.optional_url("UNSET"), Ok(None));
    }
}
