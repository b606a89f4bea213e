//! `--user` resolved as docker does: `name`, `uid`, `name:group`, `uid:gid`,
//! looked up in the container's own /etc/passwd and /etc/group; plus the
//! user's supplementary groups and `--group-add`.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry { name: f[0].into(), uid: f[2].parse().ok()?, gid: f[3].parse().ok()?, home: f[5].into() })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let members = f[3].split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect();
            Some(GroupEntry { name: f[0].into(), gid: f[2].parse().ok()?, members })
        })
        .collect()
}

/// Resolve `spec` (`--user`) and `group_add` against passwd and group text.
pub fn resolve_in(spec: &str, group_add: &[String], passwd: &str, group: &str) -> Result<ExecUser, UserError> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = users.iter().find(|e| e.name == u).or_else(|| u.parse::<u32>().ok().and_then(|n| users.iter().find(|e| e.uid == n)));
    let (uid, mut gid, name, home) = match (entry, u.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name.clone()), e.home.clone()),
        (None, Ok(n)) => (n, 0, None, "/".to_owned()),
        (None, Err(_)) => return Err(UserError::NoUser(u.to_owned())),
    };
    if let Some(g) = g {
        gid = match groups.iter().find(|e| e.name == g) {
            Some(e) => e.gid,
            None => g.parse().map_err(|_| UserError::NoGroup(g.to_owned()))?,
        };
    }
    let mut additional = Vec::new();
    // Supplementary groups from /etc/group, only when no group was forced.
    if let (Some(name), None) = (&name, g) {
        for e in &groups {
            if e.members.iter().any(|m| m == name) && e.gid != gid && !additional.contains(&e.gid) {
                additional.push(e.gid);
            }
        }
    }
    for extra in group_add {
        let id = match groups.iter().find(|e| &e.name == extra) {
            Some(e) => e.gid,
            None => extra.parse().map_err(|_| UserError::NoGroup(extra.clone()))?,
        };
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(ExecUser { uid, gid, additional_gids: additional, home })
}

/// Resolve against the files of a root filesystem (missing files = empty).
pub fn resolve(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<ExecUser, UserError> {
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    resolve_in(spec, group_add, &passwd, &group)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:u:/home/user:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nuser:x:1000:\nextra:x:2000:user\nwheel:x:10:root\n";

    #[test]
    fn names_ids_and_groups() {
        assert_eq!(resolve_in("", &[], PASSWD, GROUP).unwrap(), ExecUser { uid: 0, gid: 0, additional_gids: vec![10], home: "/root".into() });
        let u = resolve_in("user", &[], PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.clone(), u.home.as_str()), (1000, 1000, vec![2000], "/home/user"));
        let u = resolve_in("1000:extra", &["wheel".into(), "55".into()], PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 2000, vec![10, 55]));
        let u = resolve_in("4242:4343", &[], PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (4242, 4343));
        assert_eq!(resolve_in("nobody", &[], PASSWD, GROUP).unwrap_err().to_string(), "unable to find user nobody: no matching entries in passwd file");
        assert!(resolve_in("user:nogroup", &[], PASSWD, GROUP).is_err());
    }
}
