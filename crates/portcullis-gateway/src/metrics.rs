//! Counters for `/metrics`, in Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use portcullis_proto::policy::Refusal;

#[derive(Debug, Default)]
pub struct Metrics {
    pub tunnels_active: AtomicU64,
    pub tunnels_opened: AtomicU64,
    pub bytes_from_client: AtomicU64,
    pub bytes_to_client: AtomicU64,
    pub logins_ok: AtomicU64,
    pub logins_failed: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub connections_rejected: AtomicU64,
    refusals: [AtomicU64; Refusal::ALL.len()],
}

impl Metrics {
    pub fn refused(&self, reason: Refusal) {
        let index = Refusal::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every refusal is listed in ALL");
        self.refusals[index].fetch_add(1, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "portcullis_tunnels_active",
            "gauge",
            "Tunnels open now.",
            &[("", self.tunnels_active.load(Relaxed))],
        );
        metric(
            "portcullis_tunnels_opened_total",
            "counter",
            "Tunnels opened since start.",
            &[("", self.tunnels_opened.load(Relaxed))],
        );
        metric(
            "portcullis_tunnel_bytes_total",
            "counter",
            "Payload bytes carried by tunnels.",
            &[
                (
                    "{direction=\"from_client\"}",
                    self.bytes_from_client.load(Relaxed),
                ),
                (
                    "{direction=\"to_client\"}",
                    self.bytes_to_client.load(Relaxed),
                ),
            ],
        );
        metric(
            "portcullis_logins_total",
            "counter",
            "Sign-in attempts by result.",
            &[
                ("{result=\"ok\"}", self.logins_ok.load(Relaxed)),
                ("{result=\"failed\"}", self.logins_failed.load(Relaxed)),
            ],
        );
        let refusal_labels: Vec<String> = Refusal::ALL
            .iter()
            .map(|r| format!("{{reason=\"{}\"}}", r.as_str()))
            .collect();
        let refusal_samples: Vec<(&str, u64)> = refusal_labels
            .iter()
            .zip(&self.refusals)
            .map(|(label, count)| (label.as_str(), count.load(Relaxed)))
            .collect();
        metric(
            "portcullis_refusals_total",
            "counter",
            "Requests refused, by reason.",
            &refusal_samples,
        );
        metric(
            "portcullis_tls_handshake_failures_total",
            "counter",
            "Connections dropped before or during the TLS handshake.",
            &[("", self.tls_handshake_failures.load(Relaxed))],
        );
        metric(
            "portcullis_connections_rejected_total",
            "counter",
            "Connections closed at once because max_connections were open.",
            &[("", self.connections_rejected.load(Relaxed))],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::default();
        m.refused(Refusal::NotGranted);
        m.bytes_to_client.fetch_add(42, Relaxed);
        let text = m.render();
        assert!(text.contains("portcullis_refusals_total{reason=\"not_granted\"} 1\n"));
        assert!(text.contains("portcullis_tunnel_bytes_total{direction=\"to_client\"} 42\n"));
        assert!(text.contains("# TYPE portcullis_tunnels_active gauge\n"));
    }
}
