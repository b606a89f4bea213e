//! docker's JSON for `GET /networks` and `GET /networks/{id}`, from the
//! records.

use berth_api::models;
use serde_json::{Map, Value, json};

use crate::controller::Controller;
use crate::model::NetworkView;

impl NetworkView {
    /// The network as `docker network inspect` shows it, with its
    /// `Containers` (`verbose` extras are not produced).
    pub fn inspect(&self) -> models::NetworkInspect {
        serde_json::from_value(self.inspect_json()).expect("the JSON below matches the model")
    }

    /// The same as a JSON value (what the daemon serializes).
    pub fn inspect_json(&self) -> Value {
        let n = &self.network;
        let config: Vec<Value> = n
            .subnets
            .iter()
            .map(|s| {
                let mut c = Map::new();
                c.insert("Subnet".into(), json!(s.subnet.to_string()));
                if let Some(g) = s.gateway {
                    c.insert("Gateway".into(), json!(g.to_string()));
                }
                if let Some(r) = s.ip_range {
                    c.insert("IPRange".into(), json!(r.to_string()));
                }
                if !s.aux_addresses.is_empty() {
                    c.insert("AuxiliaryAddresses".into(), json!(s.aux_addresses.iter().map(|(k, v)| (k.clone(), json!(v.to_string()))).collect::<Map<_, _>>()));
                }
                Value::Object(c)
            })
            .collect();
        let containers: Map<String, Value> = self
            .containers
            .iter()
            .map(|(id, e)| {
                (
                    id.clone(),
                    json!({
                        "Name": e.container_name,
                        "EndpointID": e.endpoint_id,
                        "MacAddress": e.mac,
                        "IPv4Address": e.ipv4.map(|a| a.to_string()).unwrap_or_default(),
                        "IPv6Address": e.ipv6.map(|a| a.to_string()).unwrap_or_default(),
                    }),
                )
            })
            .collect();
        json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver.as_str(),
            "EnableIPv4": true,
            "EnableIPv6": n.enable_ipv6,
            "IPAM": {"Driver": "default", "Options": null, "Config": config},
            "Internal": n.internal,
            "Attachable": n.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": n.options,
            "Labels": n.labels,
        })
    }
}

impl Controller {
    /// A container's `NetworkSettings` as `docker inspect` shows them:
    /// `SandboxKey`, `Ports` (published ones, plus `exposed` ports with no
    /// binding as `null`) and one entry of `Networks` per endpoint, by
    /// network name. `None` when the container has no sandbox.
    pub fn settings_json(&self, container: &str, exposed: &[String]) -> Option<Value> {
        let sb = self.sandbox(container)?;
        let mut networks = Map::new();
        for e in &sb.endpoints {
            let name = self.network(&e.network_id).map(|v| v.network.name).unwrap_or_else(|_| e.network_id.clone());
            networks.insert(
                name,
                json!({
                    "IPAMConfig": if e.static_ip {
                        json!({"IPv4Address": e.ipv4.map(|a| a.addr().to_string()), "IPv6Address": e.ipv6.map(|a| a.addr().to_string())})
                    } else {
                        Value::Null
                    },
                    "Links": if e.links.is_empty() { Value::Null } else { json!(e.links.iter().map(|(t, a)| format!("{t}:{a}")).collect::<Vec<_>>()) },
                    "Aliases": if e.aliases.is_empty() { Value::Null } else { json!(e.aliases) },
                    "MacAddress": e.mac,
                    "DriverOpts": null,
                    "GwPriority": 0,
                    "NetworkID": e.network_id,
                    "EndpointID": e.endpoint_id,
                    "Gateway": e.gateway4.map(|g| g.to_string()).unwrap_or_default(),
                    "IPAddress": e.ipv4.map(|a| a.addr().to_string()).unwrap_or_default(),
                    "IPPrefixLen": e.ipv4.map(|a| a.prefix_len()).unwrap_or(0),
                    "IPv6Gateway": e.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                    "GlobalIPv6Address": e.ipv6.map(|a| a.addr().to_string()).unwrap_or_default(),
                    "GlobalIPv6PrefixLen": e.ipv6.map(|a| a.prefix_len()).unwrap_or(0),
                    "DNSNames": if e.dns_names.is_empty() || self.network(&e.network_id).is_ok_and(|v| v.network.predefined) { Value::Null } else { json!(e.dns_names) },
                }),
            );
        }
        let mut ports = Map::new();
        for key in exposed {
            ports.insert(key.clone(), Value::Null);
        }
        for m in &sb.ports {
            let key = format!("{}/{}", m.container_port, m.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if entry.is_null() {
                *entry = json!([]);
            }
            entry.as_array_mut().expect("an array").push(json!({"HostIp": m.host_ip_string(), "HostPort": m.host_port.to_string()}));
        }
        Some(json!({
            "SandboxID": sb.container_id,
            "SandboxKey": sb.netns.to_string_lossy(),
            "Ports": ports,
            "Networks": networks,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ipam::SubnetConfig;
    use crate::model::{Driver, Endpoint, Network};

    #[test]
    fn inspect_has_dockers_shape() {
        let network = Network {
            id: "ab".repeat(32),
            name: "front".into(),
            driver: Driver::Bridge,
            created: "2026-11-24T04:00:00.000000000Z".into(),
            subnets: vec![SubnetConfig {
                subnet: "10.9.0.0/24".parse().unwrap(),
                ip_range: None,
                gateway: Some("10.9.0.1".parse().unwrap()),
                aux_addresses: BTreeMap::new(),
                user_configured: true,
            }],
            enable_ipv6: false,
            internal: false,
            attachable: true,
            labels: [("team".to_string(), "web".to_string())].into(),
            options: BTreeMap::new(),
            device: "berthbabab".into(),
            owned_device: true,
            mtu: None,
            predefined: false,
        };
        let ep = Endpoint {
            network_id: network.id.clone(),
            container_name: "web".into(),
            endpoint_id: "cd".repeat(32),
            ifname: "eth0".into(),
            host_ifname: Some("berthv1".into()),
            mac: "02:42:0a:09:00:02".into(),
            ipv4: Some("10.9.0.2/24".parse().unwrap()),
            ipv6: None,
            gateway4: Some("10.9.0.1".parse().unwrap()),
            gateway6: None,
            aliases: vec![],
            dns_names: vec!["web".into()],
            links: vec![],
            gateway_provider: true,
            static_ip: false,
        };
        let view = NetworkView { network, containers: [("ef".repeat(32), ep)].into() };
        let v = view.inspect_json();
        assert_eq!(v["IPAM"]["Config"][0], json!({"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}));
        assert_eq!(v["Containers"]["ef".repeat(32)]["IPv4Address"], "10.9.0.2/24");
        assert_eq!(v["Containers"]["ef".repeat(32)]["Name"], "web");
        let m = view.inspect();
        assert_eq!(m.name.as_deref(), Some("front"));
        assert_eq!(m.driver.as_deref(), Some("bridge"));
        assert_eq!(m.attachable, Some(true));
        assert_eq!(m.containers.unwrap()[&"ef".repeat(32)].mac_address.as_deref(), Some("02:42:0a:09:00:02"));
    }
}
