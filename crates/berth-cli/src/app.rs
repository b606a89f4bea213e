//! What every command gets: the connection (made on first use) and the
//! client config (read on first use); and output that shrugs off a closed
//! pipe.

use std::cell::OnceCell;
use std::io::Write;

use crate::client::{ApiError, Client, Host};
use crate::config::Config;

pub struct Ctx {
    host: Option<String>,
    config_dir: Option<String>,
    client: OnceCell<Client>,
    config: OnceCell<Config>,
}

impl Ctx {
    pub fn new(host: Option<String>, config_dir: Option<String>) -> Ctx {
        crate::registry::set_config_dir(config_dir.as_deref());
        Ctx { host, config_dir, client: OnceCell::new(), config: OnceCell::new() }
    }

    pub fn client(&self) -> Result<&Client, ApiError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let c = Client::new(Host::resolve(self.host.as_deref())?)?;
        Ok(self.client.get_or_init(|| c))
    }

    pub fn config(&self) -> &Config {
        self.config.get_or_init(|| Config::load(self.config_dir.as_deref()))
    }
}

/// Write to stdout; a closed pipe is not an error worth reporting.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

pub fn outln(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.write_all(b"\n");
    let _ = o.flush();
}

pub fn errln(s: &str) {
    let mut o = std::io::stderr().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.write_all(b"\n");
}

pub fn out_bytes(b: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(b);
    let _ = o.flush();
}
