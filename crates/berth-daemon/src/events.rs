//! `/events`: every event goes to live subscribers and into a bounded
//! history, so `--since` can replay what happened before the client came.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// How many past events `--since` can reach.
const HISTORY: usize = 1024;

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub action: String,
    pub id: String,
    pub attributes: Vec<(String, String)>,
    /// Nanoseconds since the epoch.
    pub time_nano: i128,
}

impl Event {
    /// docker's event JSON (with the legacy `status`/`id`/`from` fields the
    /// CLI still reads).
    pub fn to_json(&self) -> Value {
        let attrs: serde_json::Map<String, Value> =
            self.attributes.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let mut v = json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": attrs},
            "scope": "local",
            "time": (self.time_nano / 1_000_000_000) as i64,
            "timeNano": self.time_nano as i64,
        });
        if self.kind == "container" || self.kind == "image" {
            v["status"] = json!(self.action);
            v["id"] = json!(self.id);
            if let Some((_, image)) = self.attributes.iter().find(|(k, _)| k == "image") {
                v["from"] = json!(image);
            }
        }
        v
    }

    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

pub struct Events {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

fn now_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

impl Events {
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(256);
        Events { tx, history: Mutex::new(VecDeque::with_capacity(HISTORY)) }
    }

    pub fn publish(&self, kind: &'static str, action: &str, id: &str, attributes: &[(&str, &str)]) {
        let e = Event {
            kind,
            action: action.to_owned(),
            id: id.to_owned(),
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            time_nano: now_nanos(),
        };
        {
            let mut h = self.history.lock().expect("events lock");
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    pub fn container(&self, id: &str, action: &str, attributes: &[(&str, &str)]) {
        self.publish("container", action, id, attributes);
    }

    pub fn image(&self, id: &str, action: &str, attributes: &[(&str, &str)]) {
        self.publish("image", action, id, attributes);
    }

    /// Past events with `time >= since` (nanoseconds), then a receiver for
    /// the live ones. Subscribing first means none fall in between.
    pub fn subscribe(&self, since: Option<i128>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let rx = self.tx.subscribe();
        let past = match since {
            Some(s) => self.history.lock().expect("events lock").iter().filter(|e| e.time_nano >= s).cloned().collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

/// Parse docker's `since`/`until` values: unix seconds (with fraction),
/// RFC 3339, or a duration back from now ("10m").
pub fn parse_time(s: &str) -> Option<i128> {
    if let Ok(f) = s.parse::<f64>() {
        return Some((f * 1e9) as i128);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_nanos() as i128);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Some(now_nanos() - d.as_nanos() as i128);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_replays_since_and_live_follows() {
        let ev = Events::new();
        ev.container("abc", "create", &[("name", "web"), ("image", "bb")]);
        let (past, mut rx) = ev.subscribe(Some(0));
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].to_json()["from"], "bb");
        ev.container("abc", "start", &[]);
        assert_eq!(rx.try_recv().unwrap().action, "start");
    }

    #[test]
    fn times_parse_in_dockers_forms() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000_500_000_000));
        assert!(parse_time("2024-01-01T00:00:00Z").is_some());
        assert!(parse_time("10m").unwrap() < now_nanos());
        assert!(parse_time("yesterday").is_none());
    }
}
