//! ElastiCache's published parameter metadata for every parameter-group family,
//! kept as data (`data/*.json`, embedded at build time) with a typed API and
//! value validation.
//!
//! * [`family`] / [`families`] give the parsed catalogue (parsed once).
//! * [`Family::param`] finds a parameter; [`Family::node_type_specific_param`] a
//!   node-type-specific one (`maxmemory`, `max_cache_memory`, …).
//! * [`validate`] checks a value against a parameter's data type and
//!   `AllowedValues`, with messages worded like ElastiCache's
//!   `InvalidParameterValue` errors; [`check_modifiable`] refuses
//!   parameters that cannot be changed.
//!
//! The `.cluster.on` families are not stored separately: they share their base
//! family's data and differ only in `cluster-enabled=yes`.

mod data;
mod validate;

pub use validate::{check_modifiable, validate};

use std::sync::OnceLock;

/// When a changed value takes effect (`ChangeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeType {
    Immediate,
    RequiresReboot,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Immediate => "immediate",
            ChangeType::RequiresReboot => "requires-reboot",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeType> {
        match s {
            "immediate" => Some(ChangeType::Immediate),
            "requires-reboot" => Some(ChangeType::RequiresReboot),
            _ => None,
        }
    }
}

/// A parameter's `DataType` as ElastiCache reports it.
///
/// `Numeric` (`"numeric"`) is used only by memcached's
/// `chunk_size_growth_factor`, a decimal such as `1.25`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    String,
    Integer,
    Boolean,
    Numeric,
}

impl DataType {
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Integer => "integer",
            DataType::Boolean => "boolean",
            DataType::Numeric => "numeric",
        }
    }

    pub fn parse(s: &str) -> Option<DataType> {
        match s {
            "string" => Some(DataType::String),
            "integer" => Some(DataType::Integer),
            "boolean" => Some(DataType::Boolean),
            "numeric" => Some(DataType::Numeric),
            _ => None,
        }
    }
}

/// One parameter of a family, as `DescribeEngineDefaultParameters` lists it
/// under `Parameters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDef {
    /// `ParameterName`.
    pub name: String,
    /// `ParameterValue`; `None` where AWS omits it (`notify-keyspace-events`).
    pub default_value: Option<String>,
    /// `Description`.
    pub description: String,
    /// `Source`: `"system"` for every built-in default.
    pub source: String,
    /// `DataType`.
    pub data_type: DataType,
    /// `AllowedValues` in AWS's string form (`"0-"`, `"1-20"`, `"0,20-"`,
    /// `"yes,no"`, `"volatile-lru,allkeys-lru,…"`); `None` where AWS omits it.
    pub allowed_values: Option<String>,
    /// `IsModifiable`.
    pub is_modifiable: bool,
    /// Not an AWS field: `true` for parameters AWS reports as not modifiable but
    /// documents as modifiable "if the parameter group is not associated with
    /// any clusters" (`databases`, `activerehashing` from redis3.2 on). The
    /// API layer decides whether to allow the change.
    pub conditionally_modifiable: bool,
    /// `MinimumEngineVersion`.
    pub minimum_engine_version: String,
    /// `ChangeType`.
    pub change_type: ChangeType,
}

/// A node-type-specific parameter (`CacheNodeTypeSpecificParameters`), with its
/// value for every node type (`CacheNodeTypeSpecificValues`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTypeSpecificDef {
    pub name: String,
    pub description: String,
    pub source: String,
    pub data_type: DataType,
    pub allowed_values: Option<String>,
    pub is_modifiable: bool,
    pub minimum_engine_version: String,
    pub change_type: ChangeType,
    /// `(CacheNodeType, Value)`, in catalogue order (t2, t3, t4g, m4, … r7g).
    pub values: Vec<(String, String)>,
}

impl NodeTypeSpecificDef {
    /// The value for one node type (`cache.r6g.large`), if the catalogue has it.
    pub fn value_for(&self, node_type: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(t, _)| t == node_type)
            .map(|(_, v)| v.as_str())
    }

    /// The same metadata as a [`ParamDef`] whose default is the value for
    /// `node_type`, for validating a user-supplied value or listing the
    /// parameter of a particular node.
    pub fn as_param(&self, node_type: &str) -> ParamDef {
        ParamDef {
            name: self.name.clone(),
            default_value: self.value_for(node_type).map(str::to_owned),
            description: self.description.clone(),
            source: self.source.clone(),
            data_type: self.data_type,
            allowed_values: self.allowed_values.clone(),
            is_modifiable: self.is_modifiable,
            conditionally_modifiable: false,
            minimum_engine_version: self.minimum_engine_version.clone(),
            change_type: self.change_type,
        }
    }
}

/// A parameter-group family (`redis7`, `valkey8.cluster.on`, `memcached1.6`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// `CacheParameterGroupFamily`.
    pub name: String,
    /// `"redis"`, `"valkey"` or `"memcached"`.
    pub engine: String,
    /// Sorted by name, as AWS lists them.
    pub params: Vec<ParamDef>,
    /// Sorted by name.
    pub node_type_specific: Vec<NodeTypeSpecificDef>,
}

impl Family {
    pub fn param(&self, name: &str) -> Option<&ParamDef> {
        self.params
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.params.get(i))
    }

    pub fn node_type_specific_param(&self, name: &str) -> Option<&NodeTypeSpecificDef> {
        self.node_type_specific.iter().find(|p| p.name == name)
    }

    /// `true` for the `*.cluster.on` families.
    pub fn is_cluster_on(&self) -> bool {
        self.name.ends_with(".cluster.on")
    }

    /// The family's default parameter group name, `default.<family>`.
    pub fn default_group_name(&self) -> String {
        format!("default.{}", self.name)
    }
}

static CATALOGUE: OnceLock<Vec<Family>> = OnceLock::new();

fn catalogue() -> &'static [Family] {
    CATALOGUE.get_or_init(data::load)
}

/// A family by its exact name (`redis7`, `redis7.cluster.on`, `memcached1.6`).
pub fn family(name: &str) -> Option<&'static Family> {
    catalogue().iter().find(|f| f.name == name)
}

/// Every family: memcached1.4–1.6, redis2.6–redis7, valkey7–valkey8, then the
/// `.cluster.on` variants (redis3.2 onwards and valkey).
pub fn families() -> impl Iterator<Item = &'static Family> {
    catalogue().iter()
}

/// The node types the catalogue has node-type-specific values for.
pub fn node_types() -> impl Iterator<Item = &'static str> {
    data::node_type_names()
}

#[cfg(test)]
mod tests;
