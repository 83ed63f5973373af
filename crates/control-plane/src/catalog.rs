//! What ElastiCache offers: engines, their versions and parameter-group families,
//! and node types with their memory. Kept as data, in one place.

use crate::error::ApiError;

/// A cache engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Redis,
    Valkey,
    Memcached,
}

impl Engine {
    pub fn parse(s: &str) -> Result<Engine, ApiError> {
        match s.to_ascii_lowercase().as_str() {
            "redis" => Ok(Engine::Redis),
            "valkey" => Ok(Engine::Valkey),
            "memcached" => Ok(Engine::Memcached),
            _ => Err(ApiError::InvalidParameterValue(format!(
                "Invalid value for parameter Engine: {s}. Valid values are redis, valkey and memcached."
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Redis => "redis",
            Engine::Valkey => "valkey",
            Engine::Memcached => "memcached",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Engine::Memcached => 11211,
            _ => 6379,
        }
    }

    pub fn is_redis_like(self) -> bool {
        !matches!(self, Engine::Memcached)
    }

    pub fn description(self) -> &'static str {
        match self {
            Engine::Redis => "Redis",
            Engine::Valkey => "Valkey",
            Engine::Memcached => "memcached",
        }
    }
}

/// One engine version ElastiCache offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineVersion {
    pub engine: Engine,
    pub version: &'static str,
    pub family: &'static str,
}

const fn v(engine: Engine, version: &'static str, family: &'static str) -> EngineVersion {
    EngineVersion {
        engine,
        version,
        family,
    }
}

/// Oldest first within each engine; the last of each engine is its default.
pub const ENGINE_VERSIONS: &[EngineVersion] = &[
    v(Engine::Memcached, "1.4.5", "memcached1.4"),
    v(Engine::Memcached, "1.4.14", "memcached1.4"),
    v(Engine::Memcached, "1.4.24", "memcached1.4"),
    v(Engine::Memcached, "1.4.33", "memcached1.4"),
    v(Engine::Memcached, "1.4.34", "memcached1.4"),
    v(Engine::Memcached, "1.5.10", "memcached1.5"),
    v(Engine::Memcached, "1.5.16", "memcached1.5"),
    v(Engine::Memcached, "1.6.6", "memcached1.6"),
    v(Engine::Memcached, "1.6.12", "memcached1.6"),
    v(Engine::Memcached, "1.6.17", "memcached1.6"),
    v(Engine::Memcached, "1.6.22", "memcached1.6"),
    v(Engine::Redis, "2.6.13", "redis2.6"),
    v(Engine::Redis, "2.8.24", "redis2.8"),
    v(Engine::Redis, "3.2.10", "redis3.2"),
    v(Engine::Redis, "4.0.10", "redis4.0"),
    v(Engine::Redis, "5.0.6", "redis5.0"),
    v(Engine::Redis, "6.0.5", "redis6.x"),
    v(Engine::Redis, "6.2.6", "redis6.x"),
    v(Engine::Redis, "7.0.7", "redis7"),
    v(Engine::Redis, "7.1.0", "redis7"),
    v(Engine::Valkey, "7.2.6", "valkey7"),
    v(Engine::Valkey, "8.0.1", "valkey8"),
    v(Engine::Valkey, "8.1.0", "valkey8"),
];

/// Resolve what a client asked for ("7.1", "6.x", "7", "7.0.7", or nothing) to a
/// full version, as ElastiCache reports `EngineVersion` in `x.y.z` form.
pub fn resolve_version(engine: Engine, requested: Option<&str>) -> Result<EngineVersion, ApiError> {
    let mut candidates = ENGINE_VERSIONS.iter().filter(|v| v.engine == engine);
    let Some(req) = requested.map(str::trim).filter(|s| !s.is_empty()) else {
        return candidates
            .next_back()
            .copied()
            .ok_or_else(|| ApiError::Internal("empty engine catalogue".into()));
    };
    let prefix = req.strip_suffix(".x").unwrap_or(req);
    let matched = candidates
        .rfind(|v| v.version == prefix || v.version.starts_with(&format!("{prefix}.")))
        .copied();
    matched.ok_or_else(|| {
        ApiError::InvalidParameterValue(format!(
            "Cannot find version {req} for {}",
            engine.as_str()
        ))
    })
}

/// A node type and its memory in MiB (ElastiCache's published sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeType {
    pub name: &'static str,
    pub memory_mib: u64,
}

const fn nt(name: &'static str, gib_hundredths: u64) -> NodeType {
    NodeType {
        name,
        memory_mib: gib_hundredths * 1024 / 100,
    }
}

pub const NODE_TYPES: &[NodeType] = &[
    nt("cache.t2.micro", 55),
    nt("cache.t2.small", 155),
    nt("cache.t2.medium", 322),
    nt("cache.t3.micro", 50),
    nt("cache.t3.small", 137),
    nt("cache.t3.medium", 309),
    nt("cache.t4g.micro", 50),
    nt("cache.t4g.small", 137),
    nt("cache.t4g.medium", 309),
    nt("cache.m4.large", 642),
    nt("cache.m4.xlarge", 1428),
    nt("cache.m4.2xlarge", 2970),
    nt("cache.m4.4xlarge", 6078),
    nt("cache.m4.10xlarge", 15464),
    nt("cache.m5.large", 638),
    nt("cache.m5.xlarge", 1293),
    nt("cache.m5.2xlarge", 2604),
    nt("cache.m5.4xlarge", 5226),
    nt("cache.m5.12xlarge", 15712),
    nt("cache.m5.24xlarge", 31432),
    nt("cache.m6g.large", 638),
    nt("cache.m6g.xlarge", 1293),
    nt("cache.m6g.2xlarge", 2604),
    nt("cache.m6g.4xlarge", 5226),
    nt("cache.m6g.8xlarge", 10368),
    nt("cache.m6g.12xlarge", 15712),
    nt("cache.m6g.16xlarge", 20955),
    nt("cache.m7g.large", 638),
    nt("cache.m7g.xlarge", 1293),
    nt("cache.m7g.2xlarge", 2604),
    nt("cache.m7g.4xlarge", 5226),
    nt("cache.m7g.8xlarge", 10368),
    nt("cache.m7g.12xlarge", 15712),
    nt("cache.m7g.16xlarge", 20955),
    nt("cache.r4.large", 1230),
    nt("cache.r4.xlarge", 2505),
    nt("cache.r4.2xlarge", 5047),
    nt("cache.r4.4xlarge", 10138),
    nt("cache.r4.8xlarge", 20326),
    nt("cache.r4.16xlarge", 40700),
    nt("cache.r5.large", 1307),
    nt("cache.r5.xlarge", 2632),
    nt("cache.r5.2xlarge", 5282),
    nt("cache.r5.4xlarge", 10581),
    nt("cache.r5.12xlarge", 31777),
    nt("cache.r5.24xlarge", 63561),
    nt("cache.r6g.large", 1307),
    nt("cache.r6g.xlarge", 2632),
    nt("cache.r6g.2xlarge", 5282),
    nt("cache.r6g.4xlarge", 10581),
    nt("cache.r6g.8xlarge", 20955),
    nt("cache.r6g.12xlarge", 31777),
    nt("cache.r6g.16xlarge", 41909),
    nt("cache.r7g.large", 1307),
    nt("cache.r7g.xlarge", 2632),
    nt("cache.r7g.2xlarge", 5282),
    nt("cache.r7g.4xlarge", 10581),
    nt("cache.r7g.8xlarge", 20955),
    nt("cache.r7g.12xlarge", 31777),
    nt("cache.r7g.16xlarge", 41909),
];

pub fn node_type(name: &str) -> Result<NodeType, ApiError> {
    NODE_TYPES
        .iter()
        .find(|t| t.name == name)
        .copied()
        .ok_or_else(|| ApiError::InvalidParameterValue(format!("Invalid CacheNodeType: {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_resolve_like_elasticache() {
        assert_eq!(
            resolve_version(Engine::Redis, None).unwrap().version,
            "7.1.0"
        );
        assert_eq!(
            resolve_version(Engine::Redis, Some("7.0")).unwrap().version,
            "7.0.7"
        );
        assert_eq!(
            resolve_version(Engine::Redis, Some("6.x")).unwrap().version,
            "6.2.6"
        );
        assert_eq!(
            resolve_version(Engine::Redis, Some("7")).unwrap().family,
            "redis7"
        );
        assert_eq!(
            resolve_version(Engine::Memcached, Some("1.6.17"))
                .unwrap()
                .version,
            "1.6.17"
        );
        assert_eq!(
            resolve_version(Engine::Valkey, None).unwrap().family,
            "valkey8"
        );
        assert!(resolve_version(Engine::Redis, Some("9.9")).is_err());
        assert!(resolve_version(Engine::Redis, Some("7.1.0.1")).is_err());
    }

    #[test]
    fn node_types() {
        assert_eq!(node_type("cache.t3.micro").unwrap().memory_mib, 512);
        assert!(node_type("cache.huge").is_err());
        let mut names: Vec<_> = NODE_TYPES.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), NODE_TYPES.len());
    }
}
