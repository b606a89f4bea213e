//! berth's container networking, as a library the daemon drives.
//!
//! The pure parts: [`ipam`] (subnets and addresses), [`ports`] (`-p`
//! specs and host ports), [`files`] (`/etc/hosts`, `/etc/resolv.conf`),
//! [`firewall`] (berth's nftables table, rendered from state) and [`store`]
//! (records on disk).

pub mod files;
pub mod firewall;
pub mod ipam;
pub mod ports;
pub mod store;
