//! Dockerfile-style `--change` instructions for `import` and `commit`:
//! CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
//! WORKDIR, applied to a container config.

use std::collections::BTreeMap;

use crate::ErrorKind;
use crate::model::ContainerConfig;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("{instruction} is not a valid change command")]
    Unknown { instruction: String },
    #[error("invalid change {change:?}: {reason}")]
    Invalid { change: String, reason: &'static str },
}

impl ChangeError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

/// Split shell-like words: whitespace separates, double or single quotes
/// group, backslash escapes.
fn words(s: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                cur.push(chars.next().ok_or("trailing backslash")?);
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote");
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `["a", "b"]` or a shell form wrapped in `/bin/sh -c`.
fn exec_or_shell(args: &str) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(args) {
        return v;
    }
    vec!["/bin/sh".into(), "-c".into(), args.to_owned()]
}

/// `k=v k2="v 2"` or the legacy `k v`.
fn pairs(args: &str, change: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let invalid = |reason| ChangeError::Invalid { change: change.to_owned(), reason };
    let w = words(args).map_err(invalid)?;
    if w.is_empty() {
        return Err(invalid("missing arguments"));
    }
    if !w[0].contains('=') {
        let (k, v) = args.trim().split_once(char::is_whitespace).ok_or_else(|| invalid("missing value"))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    w.into_iter()
        .map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| invalid("expected key=value")))
        .collect()
}

/// Apply each change to `config`, in order.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), ChangeError> {
    for change in changes {
        let line = change.trim();
        if line.is_empty() {
            continue;
        }
        let (instr, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let args = args.trim();
        let invalid = |reason| ChangeError::Invalid { change: change.clone(), reason };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => config.cmd = Some(exec_or_shell(args)),
            "ENTRYPOINT" => config.entrypoint = Some(exec_or_shell(args)),
            "ENV" => {
                let env = config.env.get_or_insert_with(Vec::new);
                for (k, v) in pairs(args, change)? {
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let labels = config.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs(args, change)? {
                    labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in words(args).map_err(invalid)? {
                    let p = if p.contains('/') { p.to_ascii_lowercase() } else { format!("{p}/tcp") };
                    let (num, proto) = p.split_once('/').expect("has a slash");
                    let valid_num = !num.is_empty()
                        && num.split('-').all(|n| n.parse::<u16>().is_ok())
                        && num.split('-').count() <= 2;
                    if !valid_num || !matches!(proto, "tcp" | "udp" | "sctp") {
                        return Err(invalid("invalid port"));
                    }
                    ports.insert(p, serde_json::json!({}));
                }
            }
            "VOLUME" => {
                let vols = config.volumes.get_or_insert_with(BTreeMap::new);
                let list = serde_json::from_str::<Vec<String>>(args).or_else(|_| words(args)).map_err(invalid)?;
                if list.is_empty() {
                    return Err(invalid("missing arguments"));
                }
                for v in list {
                    vols.insert(v, serde_json::json!({}));
                }
            }
            "WORKDIR" => {
                if args.is_empty() {
                    return Err(invalid("missing arguments"));
                }
                config.working_dir = if args.starts_with('/') {
                    args.to_owned()
                } else {
                    let base = if config.working_dir.is_empty() { "/" } else { &config.working_dir };
                    format!("{}/{args}", base.trim_end_matches('/'))
                };
            }
            "USER" => {
                if args.is_empty() {
                    return Err(invalid("missing arguments"));
                }
                config.user = args.to_owned();
            }
            "ONBUILD" => config.on_build.get_or_insert_with(Vec::new).push(args.to_owned()),
            "STOPSIGNAL" => config.stop_signal = Some(args.to_owned()),
            _ => return Err(ChangeError::Unknown { instruction: instr.to_owned() }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(ch: &[&str]) -> Result<ContainerConfig, ChangeError> {
        let mut c = ContainerConfig { env: Some(vec!["PATH=/bin".into(), "A=1".into()]), ..Default::default() };
        apply_changes(&mut c, &ch.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(c)
    }

    #[test]
    fn applies_each_instruction() {
        let c = apply(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init --x",
            r#"ENV A=2 B="two words""#,
            "ENV C three words",
            "EXPOSE 80 53/udp 8000-8001",
            r#"LABEL a=b "c d"=e"#,
            "VOLUME /data /logs",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/bin/init --x"]);
        assert_eq!(c.env.unwrap(), ["PATH=/bin", "A=2", "B=two words", "C=three words"]);
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000-8001/tcp"]);
        let labels = c.labels.unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["c d"], "e");
        assert_eq!(c.volumes.unwrap().len(), 2);
        assert_eq!(c.working_dir, "/srv/app");
        assert_eq!(c.user, "1000:1000");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn rejects_unknown_and_malformed_changes() {
        assert_eq!(apply(&["RUN ls"]).unwrap_err().to_string(), "RUN is not a valid change command");
        assert!(apply(&["EXPOSE http"]).is_err());
        assert!(apply(&["ENV"]).is_err());
        assert!(apply(&[r#"LABEL a="b"#]).is_err());
        assert!(apply(&["USER"]).is_err());
    }
}
