//! `/networks/*`: create, list, inspect, remove, prune, connect and
//! disconnect, over berth-network's controller.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_network::model::{IpamRequest, NetworkCreate};
use berth_network::{Network, NetworkView};
use serde_json::{Value, json};

use super::containers::parse_body;
use crate::containers::{Filters, Shared, label_matches};
use crate::error::{ApiError, ApiResult};
use crate::network::{endpoint_from_body, net_err};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

type Q = Query<HashMap<String, String>>;

/// Blocking controller work off the async threads.
async fn ctl<T: Send + 'static>(
    d: &Shared,
    f: impl FnOnce(&berth_network::Controller) -> Result<T, berth_network::NetworkError> + Send + 'static,
) -> ApiResult<T> {
    let c = d.network.ctl.clone();
    tokio::task::spawn_blocking(move || f(&c)).await?.map_err(net_err)
}

/// docker's `network ls` filters: name (substring), id (prefix), driver,
/// label, type (custom/builtin), dangling (no containers).
fn matches(f: &Filters, v: &NetworkView) -> ApiResult<bool> {
    let n = &v.network;
    for (key, values) in &f.0 {
        let ok = match key.as_str() {
            "name" => values.iter().any(|x| n.name.contains(x.as_str())),
            "id" => values.iter().any(|x| n.id.starts_with(x.as_str())),
            "driver" => values.iter().any(|x| x == n.driver.as_str()),
            "label" => {
                let labels: HashMap<String, String> = n.labels.clone().into_iter().collect();
                values.iter().all(|x| label_matches(Some(&labels), x))
            }
            "type" => values.iter().any(|x| match x.as_str() {
                "custom" => !n.predefined,
                "builtin" => n.predefined,
                other => other.is_empty(),
            }),
            "dangling" => values.iter().any(|x| matches!(x.as_str(), "true" | "1") == (v.containers.is_empty() && !n.predefined)),
            "scope" => values.iter().any(|x| x == "local"),
            other => return Err(ApiError::invalid(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn list(State(d): State<Shared>, Query(q): Q) -> ApiResult<Response> {
    let f = Filters::parse(q.get("filters").map(String::as_str))?;
    let mut out = Vec::new();
    for v in ctl(&d, |c| Ok(c.networks())).await? {
        if matches(&f, &v)? {
            let mut j = v.inspect_json();
            // `ls` leaves the containers out, as docker does.
            j["Containers"] = json!({});
            out.push(j);
        }
    }
    Ok(axum::Json(out).into_response())
}

async fn inspect(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    let v = ctl(&d, move |c| c.network(&id)).await?;
    Ok(axum::Json(v.inspect_json()).into_response())
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object().map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect()).unwrap_or_default()
}

/// docker's create body (`NetworkCreateRequest`) as the controller's request.
pub fn create_request(body: &Value) -> ApiResult<NetworkCreate> {
    let name = body["Name"].as_str().unwrap_or("").to_owned();
    if name.is_empty() {
        return Err(ApiError::invalid("network name must not be empty"));
    }
    let ipam = body["IPAM"]["Config"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| IpamRequest {
            subnet: c["Subnet"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
            ip_range: c["IPRange"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
            gateway: c["Gateway"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
            aux_addresses: string_map(&c["AuxiliaryAddresses"]),
        })
        .collect();
    if let Some(drv) = body["IPAM"]["Driver"].as_str().filter(|d| !d.is_empty() && *d != "default") {
        return Err(ApiError::not_found(format!("plugin \"{drv}\" not found")));
    }
    Ok(NetworkCreate {
        name,
        driver: body["Driver"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
        ipam,
        ipv6: body["EnableIPv6"].as_bool().unwrap_or(false),
        internal: body["Internal"].as_bool().unwrap_or(false),
        attachable: body["Attachable"].as_bool().unwrap_or(false),
        labels: string_map(&body["Labels"]),
        options: string_map(&body["Options"]),
    })
}

async fn create(State(d): State<Shared>, body: axum::body::Bytes) -> ApiResult<Response> {
    let body: Value = parse_body(&body)?;
    let req = create_request(&body)?;
    if matches!(req.name.as_str(), "host" | "none") {
        return Err(ApiError::new(
            berth_api::ErrorKind::Forbidden,
            format!("{} is a pre-defined network and cannot be created", req.name),
        ));
    }
    let n: Network = ctl(&d, move |c| c.create_network(&req)).await?;
    d.events.publish("network", "create", &n.id, &[("name", &n.name), ("type", n.driver.as_str())]);
    Ok((StatusCode::CREATED, axum::Json(json!({"Id": n.id, "Warning": ""}))).into_response())
}

async fn remove(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    let v = ctl(&d, {
        let id = id.clone();
        move |c| c.network(&id)
    })
    .await?;
    let nid = v.network.id.clone();
    ctl(&d, move |c| c.remove_network(&nid)).await?;
    d.events.publish("network", "destroy", &v.network.id, &[("name", &v.network.name), ("type", v.network.driver.as_str())]);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(d): State<Shared>, Query(q): Q) -> ApiResult<Response> {
    let f = Filters::parse(q.get("filters").map(String::as_str))?;
    for k in f.0.keys() {
        if !matches!(k.as_str(), "label" | "label!" | "until") {
            return Err(ApiError::invalid(format!("invalid filter '{k}'")));
        }
    }
    // Networks a container (running or not) still names are kept.
    let mut used = std::collections::HashSet::new();
    for h in d.containers.all() {
        used.extend(h.lock().await.endpoints.keys().cloned());
    }
    let until = f.get("until").first().and_then(|u| crate::events::parse_time(u));
    let removed = ctl(&d, move |c| {
        c.prune(&|n: &Network| {
            let labels: HashMap<String, String> = n.labels.clone().into_iter().collect();
            !used.contains(&n.name)
                && f.get("label").iter().all(|l| label_matches(Some(&labels), l))
                && !f.get("label!").iter().any(|l| label_matches(Some(&labels), l))
                && until.is_none_or(|u| crate::events::parse_time(&n.created).is_some_and(|t| t < u))
        })
    })
    .await?;
    Ok(axum::Json(json!({"NetworksDeleted": removed})).into_response())
}

async fn connect(State(d): State<Shared>, Path(id): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let body: Value = parse_body(&body)?;
    let container = body["Container"].as_str().filter(|c| !c.is_empty()).ok_or_else(|| ApiError::invalid("no container was specified"))?;
    let ep = endpoint_from_body(&body)?;
    d.connect_container(&id, container, ep).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(State(d): State<Shared>, Path(id): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let body: Value = parse_body(&body)?;
    let container = body["Container"].as_str().filter(|c| !c.is_empty()).ok_or_else(|| ApiError::invalid("no container was specified"))?;
    d.disconnect_container(&id, container, body["Force"].as_bool().unwrap_or(false)).await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_maps_to_the_request() {
        let body = json!({
            "Name": "front", "Driver": "bridge", "Internal": true, "Attachable": true,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1", "AuxiliaryAddresses": {"r": "10.9.0.5"}}]},
            "Options": {"com.docker.network.bridge.name": "br-front"}, "Labels": {"team": "web"}
        });
        let r = create_request(&body).unwrap();
        assert_eq!(r.name, "front");
        assert!(r.internal && r.attachable && !r.ipv6);
        assert_eq!(r.ipam[0].subnet.as_deref(), Some("10.9.0.0/24"));
        assert_eq!(r.ipam[0].aux_addresses["r"], "10.9.0.5");
        assert_eq!(r.options["com.docker.network.bridge.name"], "br-front");
        assert!(create_request(&json!({"Name": ""})).is_err());
        assert!(create_request(&json!({"Name": "x", "IPAM": {"Driver": "dhcp"}})).unwrap_err().message.contains("plugin \"dhcp\" not found"));
    }
}
