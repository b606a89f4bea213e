//! The client config: docker's `config.json` format in the `--config` dir
//! (`BERTH_CONFIG`, default `~/.berth`). Only the keys berth uses are read.

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Config {
    #[serde(rename = "psFormat", default)]
    pub ps_format: String,
    #[serde(rename = "imagesFormat", default)]
    pub images_format: String,
    #[serde(rename = "statsFormat", default)]
    pub stats_format: String,
    #[serde(rename = "detachKeys", default)]
    pub detach_keys: String,
}

impl Config {
    /// Read `<dir>/config.json`; a missing or unreadable file is an empty
    /// config, as for docker.
    pub fn load(dir: Option<&str>) -> Config {
        let Some(dir) = self::dir(dir) else { return Config::default() };
        std::fs::read(dir.join("config.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }
}

/// The config dir: `--config`, else `~/.berth`.
pub fn dir(flag: Option<&str>) -> Option<std::path::PathBuf> {
    match flag {
        Some(d) => Some(std::path::PathBuf::from(d)),
        None => std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".berth")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_read_from_the_config_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("config.json"), r#"{"psFormat": "table {{.ID}}", "auths": {}, "detachKeys": "ctrl-a"}"#).unwrap();
        let c = Config::load(Some(d.path().to_str().unwrap()));
        assert_eq!(c.ps_format, "table {{.ID}}");
        assert_eq!(c.detach_keys, "ctrl-a");
        assert_eq!(Config::load(Some("/nonexistent/berth")), Config::default());
    }
}
