//! Volumes in berthd: the `/volumes` API over berth-volume's store, and a
//! container's mounts ([`spec`] parses them, [`mounts`] resolves, mounts
//! and releases them).

pub mod mounts;
pub mod spec;

use std::collections::BTreeMap;

use berth_volume::{Volume, VolumeError};
use serde_json::{Value, json};

use crate::Daemon;
use crate::containers::{Filters, label_matches};
use crate::error::{ApiError, ApiResult};

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> ApiError {
        ApiError::new(e.kind(), e.to_string())
    }
}

/// A volume as the API shows it; `usage` adds `UsageData` (system df).
pub fn volume_json(v: &Volume, mountpoint: &std::path::Path, usage: Option<(u64, usize)>) -> Value {
    let map_or_null = |m: &BTreeMap<String, String>| if m.is_empty() { Value::Null } else { json!(m) };
    let mut j = json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": map_or_null(&v.labels),
        "Mountpoint": mountpoint,
        "Name": v.name,
        "Options": map_or_null(&v.options),
        "Scope": "local",
    });
    if let Some((size, refs)) = usage {
        j["UsageData"] = json!({"Size": size, "RefCount": refs});
    }
    j
}

/// Whether a volume passes `volume ls --filter` / prune's filters.
fn matches(f: &Filters, v: &Volume, users: usize) -> ApiResult<bool> {
    let labels: std::collections::HashMap<String, String> = v.labels.clone().into_iter().collect();
    for (key, vals) in &f.0 {
        let ok = match key.as_str() {
            "name" => vals.iter().any(|n| v.name.contains(n.as_str())),
            "driver" => vals.iter().any(|d| d == &v.driver),
            "label" => vals.iter().all(|l| label_matches(Some(&labels), l)),
            "label!" => vals.iter().all(|l| !label_matches(Some(&labels), l)),
            "dangling" => {
                let want = match vals.first().map(String::as_str) {
                    Some("true" | "1") => true,
                    Some("false" | "0") => false,
                    other => return Err(ApiError::invalid(format!("invalid filter 'dangling={}'", other.unwrap_or("")))),
                };
                (users == 0) == want
            }
            // prune's: handled by the caller.
            "all" => true,
            other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Daemon {
    async fn volumes_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&berth_volume::VolumeStore) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let store = self.volumes.clone();
        tokio::task::spawn_blocking(move || f(&store)).await?
    }

    /// `GET /volumes`.
    pub async fn list_volumes(&self, filters: &Filters) -> ApiResult<Value> {
        let f = filters.clone();
        self.volumes_blocking(move |s| {
            let mut out = Vec::new();
            for v in s.list() {
                if matches(&f, &v, s.users(&v.name).len())? {
                    out.push(volume_json(&v, &s.mountpoint(&v.name), None));
                }
            }
            Ok(json!({"Volumes": out, "Warnings": Value::Null}))
        })
        .await
    }

    /// `POST /volumes/create`.
    pub async fn create_volume(&self, req: berth_api::models::VolumeCreateRequest) -> ApiResult<Value> {
        let v = self
            .volumes_blocking(move |s| {
                let v = s.create(
                    req.name.as_deref(),
                    req.driver.as_deref(),
                    req.driver_opts.unwrap_or_default().into_iter().collect(),
                    req.labels.unwrap_or_default().into_iter().collect(),
                )?;
                Ok(volume_json(&v, &s.mountpoint(&v.name), None))
            })
            .await?;
        self.events.publish("volume", "create", v["Name"].as_str().unwrap_or(""), &[("driver", "local")]);
        Ok(v)
    }

    /// `GET /volumes/{name}`.
    pub async fn inspect_volume(&self, name: &str) -> ApiResult<Value> {
        let name = name.to_owned();
        self.volumes_blocking(move |s| {
            let v = s.get(&name)?;
            Ok(volume_json(&v, &s.mountpoint(&v.name), None))
        })
        .await
    }

    /// `DELETE /volumes/{name}`.
    pub async fn remove_volume(&self, name: &str, force: bool) -> ApiResult<()> {
        let n = name.to_owned();
        self.volumes_blocking(move |s| Ok(s.remove(&n, force)?)).await?;
        self.events.publish("volume", "destroy", name, &[("driver", "local")]);
        Ok(())
    }

    /// `POST /volumes/prune`: unused volumes, anonymous ones only unless
    /// `all=true` (API 1.42+; before, every unused volume).
    pub async fn prune_volumes(&self, filters: &Filters, api: berth_api::version::ApiVersion) -> ApiResult<Value> {
        let all = match filters.get("all").first().map(String::as_str) {
            None => api < berth_api::version::ApiVersion(1, 42),
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => return Err(ApiError::invalid(format!("invalid filter 'all={other}'"))),
        };
        let f = filters.clone();
        let (deleted, reclaimed) = self
            .volumes_blocking(move |s| {
                let (mut deleted, mut reclaimed) = (Vec::new(), 0u64);
                for v in s.list() {
                    if !s.users(&v.name).is_empty() || (!all && !v.is_anonymous()) || !matches(&f, &v, 0)? {
                        continue;
                    }
                    let size = s.usage(&v.name);
                    if s.remove(&v.name, false).is_ok() {
                        deleted.push(v.name);
                        reclaimed += size;
                    }
                }
                Ok((deleted, reclaimed))
            })
            .await?;
        for n in &deleted {
            self.events.publish("volume", "destroy", n, &[("driver", "local")]);
        }
        self.events.publish("volume", "prune", "", &[("reclaimed", &reclaimed.to_string())]);
        Ok(json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }

    /// Volumes with `UsageData`, for `GET /system/df`.
    pub async fn volumes_usage(&self) -> Value {
        self.volumes_blocking(|s| {
            Ok(Value::Array(
                s.list().iter().map(|v| volume_json(v, &s.mountpoint(&v.name), Some((s.usage(&v.name), s.users(&v.name).len())))).collect(),
            ))
        })
        .await
        .unwrap_or_else(|_| json!([]))
    }
}
