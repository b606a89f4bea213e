//! `berth network ...`: docker's network commands over `/networks`.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use ipnet::IpNet;
use serde_json::{Value, json};

use crate::app::{Ctx, outln};
use crate::client::{ApiError, percent_encode, query};
use crate::format::template;
use crate::later::{LaterError, ListArgs, PruneLaterArgs, call, inspect_each, list_out, prune};
use crate::opts::Filters;

#[derive(Debug, Clone, Subcommand)]
pub enum NetworkCommand {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(CreateArgs),
    /// Disconnect a container from a network
    Disconnect {
        /// Force the container to disconnect from a network
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(value_name = "NETWORK")]
        network: String,
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
    /// Display detailed information on one or more networks
    Inspect {
        /// Format output using a custom template
        #[arg(short = 'f', long = "format", value_name = "string")]
        format: Option<String>,
        /// Verbose output for diagnostics
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        #[arg(value_name = "NETWORK", required = true)]
        names: Vec<String>,
    },
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove all unused networks
    Prune(PruneLaterArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm {
        /// Do not error if the network does not exist
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(value_name = "NETWORK", required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub list: ListArgs,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias", value_name = "strings")]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long = "ip", value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long = "ip6", value_name = "string")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long = "link", value_name = "list")]
    pub link: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_name = "strings")]
    pub driver_opt: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long = "attachable")]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "map")]
    pub aux_address: Vec<String>,
    /// Driver to manage the Network
    #[arg(short = 'd', long = "driver", value_name = "string", default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway", value_name = "strings")]
    pub gateway: Vec<String>,
    /// Restrict external access to the network
    #[arg(long = "internal")]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings")]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "string", default_value = "default")]
    pub ipam_driver: String,
    /// Enable or disable IPv6 networking
    #[arg(long = "ipv6")]
    pub ipv6: bool,
    /// Set metadata on a network
    #[arg(long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet", value_name = "strings")]
    pub subnet: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

/// `key=value` list flags as a map (a bare key gets an empty value).
fn kv_map(list: &[String]) -> BTreeMap<String, String> {
    list.iter().map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap_or((kv.clone(), String::new()))).collect()
}

fn cli_err(msg: String) -> LaterError {
    LaterError::Usage(msg)
}

/// docker's IPAM config from `--subnet`, `--gateway`, `--ip-range`,
/// `--aux-address`: each of the latter goes with the subnet holding it.
pub fn ipam_config(a: &CreateArgs) -> Result<Vec<Value>, LaterError> {
    let subnets = a
        .subnet
        .iter()
        .map(|s| s.parse::<IpNet>().map(|n| (s.clone(), n)).map_err(|_| cli_err(format!("invalid CIDR address: {s}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut configs: Vec<serde_json::Map<String, Value>> =
        subnets.iter().map(|(s, _)| [("Subnet".to_owned(), json!(s))].into_iter().collect()).collect();
    let find = |ip: std::net::IpAddr, what: &str, value: &str| -> Result<usize, LaterError> {
        subnets
            .iter()
            .position(|(_, n)| n.contains(&ip))
            .ok_or_else(|| cli_err(format!("no matching subnet for {what} {value}")))
    };
    let parse_ip = |s: &str| s.parse::<std::net::IpAddr>().map_err(|_| cli_err(format!("invalid IP address: {s}")));
    for g in &a.gateway {
        let i = find(parse_ip(g)?, "gateway", g)?;
        if configs[i].insert("Gateway".into(), json!(g)).is_some() {
            return Err(cli_err(format!("cannot configure multiple gateways for subnet {}", subnets[i].0)));
        }
    }
    for r in &a.ip_range {
        let net: IpNet = r.parse().map_err(|_| cli_err(format!("invalid CIDR address: {r}")))?;
        let i = find(net.addr(), "range", r)?;
        if configs[i].insert("IPRange".into(), json!(r)).is_some() {
            return Err(cli_err(format!("cannot configure multiple ranges ({r}) on the same subnet ({})", subnets[i].0)));
        }
    }
    for (k, v) in kv_map(&a.aux_address) {
        let i = find(parse_ip(&v)?, "aux-address", &v)?;
        configs[i].entry("AuxiliaryAddresses").or_insert_with(|| json!({}))[&k] = json!(v);
    }
    Ok(configs.into_iter().map(Value::Object).collect())
}

pub async fn network(ctx: &Ctx, cmd: &NetworkCommand) -> Result<(), LaterError> {
    use template::s;
    match cmd {
        NetworkCommand::Ls(a) => {
            let f = Filters::from_pairs(&a.list.filter);
            let q = if f.is_empty() { String::new() } else { query(&[("filters", f.to_json())]) };
            let v = call(ctx, "GET", &format!("/networks{q}"), None).await?;
            let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
            items.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            for n in &mut items {
                let id = n["Id"].as_str().unwrap_or("");
                n["ID"] = json!(if a.no_trunc { id.to_owned() } else { id.chars().take(12).collect() });
                n["IPv6"] = json!(n["EnableIPv6"].as_bool().unwrap_or(false).to_string());
                n["Internal"] = json!(n["Internal"].as_bool().unwrap_or(false).to_string());
                n["CreatedAt"] = n["Created"].clone();
            }
            let h = template::map([("ID", s("NETWORK ID")), ("Name", s("NAME")), ("Driver", s("DRIVER")), ("Scope", s("SCOPE")), ("IPv6", s("IPV6")), ("Internal", s("INTERNAL"))]);
            list_out(&items, &a.list, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", h, "ID")
        }
        NetworkCommand::Create(a) => {
            let body = json!({
                "Name": a.name,
                "Driver": a.driver,
                "Internal": a.internal,
                "Attachable": a.attachable,
                "EnableIPv6": a.ipv6,
                "IPAM": {"Driver": a.ipam_driver, "Config": ipam_config(a)?, "Options": {}},
                "Options": kv_map(&a.opt),
                "Labels": kv_map(&a.label),
            });
            let v = call(ctx, "POST", "/networks/create", Some(body.to_string().as_bytes())).await?;
            outln(v["Id"].as_str().unwrap_or(""));
            Ok(())
        }
        NetworkCommand::Rm { force, names } => {
            let mut errs = Vec::new();
            for n in names {
                match call(ctx, "DELETE", &format!("/networks/{}", percent_encode(n)), None).await {
                    Ok(_) => outln(n),
                    Err(LaterError::Api(ApiError::Daemon { status: 404, .. })) if *force => {}
                    Err(e) => errs.push(e),
                }
            }
            if errs.is_empty() { Ok(()) } else { Err(LaterError::Many(errs)) }
        }
        NetworkCommand::Inspect { format, names, .. } => inspect_each(ctx, "networks", names, format.as_deref()).await,
        NetworkCommand::Connect(a) => {
            let mut ipam = serde_json::Map::new();
            if let Some(ip) = &a.ip {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip) = &a.ip6 {
                ipam.insert("IPv6Address".into(), json!(ip));
            }
            let body = json!({
                "Container": a.container,
                "EndpointConfig": {
                    "IPAMConfig": if ipam.is_empty() { Value::Null } else { Value::Object(ipam) },
                    "Aliases": a.alias,
                    "Links": a.link,
                    "DriverOpts": kv_map(&a.driver_opt),
                },
            });
            call(ctx, "POST", &format!("/networks/{}/connect", percent_encode(&a.network)), Some(body.to_string().as_bytes())).await?;
            Ok(())
        }
        NetworkCommand::Disconnect { network, container, force } => {
            let body = json!({"Container": container, "Force": force});
            call(ctx, "POST", &format!("/networks/{}/disconnect", percent_encode(network)), Some(body.to_string().as_bytes())).await?;
            Ok(())
        }
        NetworkCommand::Prune(a) => {
            prune(ctx, "networks", "NetworksDeleted", "Deleted Networks:", a, "WARNING! This will remove all custom networks not used by at least one container.").await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: NetworkCommand,
    }

    fn create(args: &[&str]) -> CreateArgs {
        let mut v = vec!["t", "create"];
        v.extend(args);
        match T::parse_from(v).cmd {
            NetworkCommand::Create(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn ipam_flags_pair_with_their_subnets() {
        let a = create(&[
            "--subnet", "10.1.0.0/16", "--subnet", "10.2.0.0/24", "--gateway", "10.2.0.254", "--ip-range", "10.1.5.0/24",
            "--aux-address", "router=10.1.0.9", "n",
        ]);
        let c = ipam_config(&a).unwrap();
        assert_eq!(c[0], json!({"Subnet": "10.1.0.0/16", "IPRange": "10.1.5.0/24", "AuxiliaryAddresses": {"router": "10.1.0.9"}}));
        assert_eq!(c[1], json!({"Subnet": "10.2.0.0/24", "Gateway": "10.2.0.254"}));
        let e = ipam_config(&create(&["--subnet", "10.1.0.0/16", "--gateway", "10.9.0.1", "n"])).unwrap_err();
        assert!(e.to_string().contains("no matching subnet for gateway 10.9.0.1"), "{e}");
        let e = ipam_config(&create(&["--subnet", "10.1.0.0/16", "--gateway", "10.1.0.1", "--gateway", "10.1.0.2", "n"])).unwrap_err();
        assert!(e.to_string().contains("multiple gateways"), "{e}");
        assert!(ipam_config(&create(&["--subnet", "nope", "n"])).is_err());
    }
}
