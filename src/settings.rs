//! Command-line flags and their environment-variable twins.

use clap::{Parser, ValueEnum};
use control_plane::{Addressing, NodeNetwork};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NodeAddressing {
    /// Each node on its own 127.x.y.z address, on the port the API call asked for.
    Loopback,
    /// All nodes on one address (--node-bind), a distinct port each.
    Ports,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "elastilite",
    version,
    about = "A local Amazon ElastiCache: the AWS API plus real Redis and memcached nodes"
)]
pub struct Settings {
    /// Address of the AWS API (the port LocalStack-configured tools already use).
    #[arg(long, env = "ELASTILITE_LISTEN", default_value = "127.0.0.1:4566")]
    pub listen: String,

    /// Where state is kept [default: $XDG_DATA_HOME/elastilite or ~/.local/share/elastilite].
    #[arg(long, env = "ELASTILITE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Account id in ARNs.
    #[arg(long, env = "ELASTILITE_ACCOUNT_ID", default_value = "000000000000")]
    pub account_id: String,

    /// Region for requests whose signature names none.
    #[arg(long, env = "ELASTILITE_DEFAULT_REGION", default_value = "us-east-1")]
    pub default_region: String,

    /// How long creating/modifying/rebooting/deleting last, in milliseconds.
    #[arg(long, env = "ELASTILITE_PROVISION_DELAY_MS", default_value_t = 0)]
    pub provision_delay_ms: u64,

    /// How long a replication group's primary must be unreachable (paused or isolated)
    /// before automatic failover promotes a replica, in milliseconds.
    #[arg(long, env = "ELASTILITE_FAILOVER_DETECTION_MS", default_value_t = 1000)]
    pub failover_detection_ms: u64,

    /// How node endpoints are chosen.
    #[arg(long, env = "ELASTILITE_NODE_ADDRESSING", value_enum, default_value_t = NodeAddressing::Loopback)]
    pub node_addressing: NodeAddressing,

    /// First loopback address handed to nodes (loopback addressing).
    #[arg(long, env = "ELASTILITE_LOOPBACK_BASE", default_value = "127.10.0.1")]
    pub loopback_base: Ipv4Addr,

    /// Address every node binds (ports addressing); 0.0.0.0 for containers.
    #[arg(long, env = "ELASTILITE_NODE_BIND", default_value = "127.0.0.1")]
    pub node_bind: IpAddr,

    /// First port tried when a node's requested port is taken (ports addressing).
    #[arg(long, env = "ELASTILITE_NODE_FIRST_PORT", default_value_t = 30000)]
    pub node_first_port: u16,

    /// Host name or address reported in endpoints instead of the bind address.
    #[arg(long, env = "ELASTILITE_ADVERTISE_HOST")]
    pub advertise_host: Option<String>,

    /// Keep Redis data across restarts: saved on shutdown and every
    /// --persist-interval-secs, loaded at start.
    #[arg(long, env = "ELASTILITE_PERSIST_DATA")]
    pub persist_data: bool,

    /// How often persisted data is saved (the most a crash can lose).
    #[arg(long, env = "ELASTILITE_PERSIST_INTERVAL_SECS", default_value_t = 60)]
    pub persist_interval_secs: u64,

    /// Verify SigV4 signatures of API requests against --credentials and refuse
    /// others, as AWS does (off by default, like every local emulator).
    #[arg(long, env = "ELASTILITE_REQUIRE_SIGNATURES")]
    pub require_signatures: bool,

    /// Access keys accepted in strict mode: `KEYID:SECRET`, comma-separated.
    #[arg(long, env = "ELASTILITE_CREDENTIALS", value_delimiter = ',')]
    pub credentials: Vec<String>,

    /// Let Redis nodes run the commands ElastiCache refuses (CONFIG SET, DEBUG, …).
    #[arg(long, env = "ELASTILITE_ALLOW_RESTRICTED_COMMANDS")]
    pub allow_restricted_commands: bool,

    /// Bytes one "GB" of a serverless cache's `DataStorage` limit stands for
    /// (1 GiB like AWS; tests shrink it to reach the limit quickly).
    #[arg(long, env = "ELASTILITE_SERVERLESS_GB_BYTES", default_value_t = 1 << 30)]
    pub serverless_gb_bytes: u64,
}

impl Settings {
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("elastilite");
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/share/elastilite"),
            None => PathBuf::from("elastilite-data"),
        }
    }

    /// The access keys of strict mode, keyed by id.
    pub fn credential_map(&self) -> anyhow::Result<std::collections::HashMap<String, String>> {
        let mut out = std::collections::HashMap::new();
        for c in &self.credentials {
            let (id, secret) = c
                .split_once(':')
                .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
                .ok_or_else(|| anyhow::anyhow!("--credentials wants KEYID:SECRET, got {c:?}"))?;
            out.insert(id.to_string(), secret.to_string());
        }
        if self.require_signatures && out.is_empty() {
            anyhow::bail!("--require-signatures needs at least one --credentials KEYID:SECRET");
        }
        Ok(out)
    }

    pub fn control_plane_config(&self) -> anyhow::Result<control_plane::Config> {
        let mut addressing = match self.node_addressing {
            NodeAddressing::Loopback => Addressing::Loopback {
                first: self.loopback_base,
            },
            NodeAddressing::Ports => Addressing::Ports {
                bind: self.node_bind,
                first_port: self.node_first_port,
            },
        };
        if let Addressing::Loopback { first } = addressing {
            // Only Linux routes all of 127/8 by default; elsewhere fall back.
            if std::net::TcpListener::bind((first, 0)).is_err() {
                tracing::warn!(%first, "loopback addresses beyond 127.0.0.1 are not usable here; using one address with a port per node");
                addressing = Addressing::Ports {
                    bind: self.node_bind,
                    first_port: self.node_first_port,
                };
            }
        }
        Ok(control_plane::Config {
            data_dir: self.data_dir(),
            account_id: self.account_id.clone(),
            provision_delay: Duration::from_millis(self.provision_delay_ms),
            network: NodeNetwork {
                addressing,
                advertise_host: self.advertise_host.clone(),
            },
            allow_restricted_commands: self.allow_restricted_commands,
            persist_interval: self
                .persist_data
                .then(|| Duration::from_secs(self.persist_interval_secs.max(1))),
            failover_detection: Duration::from_millis(self.failover_detection_ms),
            iam_credentials: control_plane::IamCredentials {
                keys: self.credential_map()?,
                strict: self.require_signatures,
            },
            serverless_gb_bytes: self.serverless_gb_bytes.max(1),
        })
    }

    /// The effective settings as `GET /_elastilite/configuration` reports them
    /// (secrets left out: only the access key ids of `--credentials`).
    pub fn configuration_json(&self) -> serde_json::Value {
        let key_ids: Vec<&str> = self
            .credentials
            .iter()
            .filter_map(|c| c.split_once(':').map(|(id, _)| id))
            .collect();
        serde_json::json!({
            "listen": self.listen,
            "data_dir": self.data_dir().display().to_string(),
            "account_id": self.account_id,
            "default_region": self.default_region,
            "provision_delay_ms": self.provision_delay_ms,
            "node_addressing": match self.node_addressing {
                NodeAddressing::Loopback => "loopback",
                NodeAddressing::Ports => "ports",
            },
            "loopback_base": self.loopback_base.to_string(),
            "node_bind": self.node_bind.to_string(),
            "node_first_port": self.node_first_port,
            "advertise_host": self.advertise_host,
            "persist_data": self.persist_data,
            "persist_interval_secs": self.persist_interval_secs,
            "require_signatures": self.require_signatures,
            "credential_key_ids": key_ids,
            "allow_restricted_commands": self.allow_restricted_commands,
        })
    }
}
