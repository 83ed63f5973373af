//! The embedded JSON (`data/`) and its conversion into the typed catalogue.
//!
//! The files use AWS's field names (`ParameterName`, `AllowedValues`, …) so that
//! they compare directly with `DescribeEngineDefaultParameters` output. Two
//! fields are ours: `ConditionallyModifiable` on a parameter, and `ValuesFrom`
//! on a node-type-specific parameter, naming the column of `node-types.json`
//! that holds its per-node-type values.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::{ChangeType, DataType, Family, NodeTypeSpecificDef, ParamDef};

/// Base families, in the order `families()` yields them.
const FILES: &[(&str, &str)] = &[
    ("memcached1.4", include_str!("../data/memcached1.4.json")),
    ("memcached1.5", include_str!("../data/memcached1.5.json")),
    ("memcached1.6", include_str!("../data/memcached1.6.json")),
    ("redis2.6", include_str!("../data/redis2.6.json")),
    ("redis2.8", include_str!("../data/redis2.8.json")),
    ("redis3.2", include_str!("../data/redis3.2.json")),
    ("redis4.0", include_str!("../data/redis4.0.json")),
    ("redis5.0", include_str!("../data/redis5.0.json")),
    ("redis6.x", include_str!("../data/redis6.x.json")),
    ("redis7", include_str!("../data/redis7.json")),
    ("valkey7", include_str!("../data/valkey7.json")),
    ("valkey8", include_str!("../data/valkey8.json")),
];

const NODE_TYPES: &str = include_str!("../data/node-types.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFamily {
    #[serde(rename = "CacheParameterGroupFamily")]
    family: String,
    #[serde(rename = "Engine")]
    engine: String,
    #[serde(rename = "ClusterOnVariant")]
    cluster_on_variant: bool,
    #[serde(rename = "Parameters")]
    parameters: Vec<RawParam>,
    #[serde(rename = "CacheNodeTypeSpecificParameters")]
    node_type_specific: Vec<RawParam>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(rename = "ParameterName")]
    name: String,
    #[serde(rename = "ParameterValue")]
    value: Option<String>,
    #[serde(rename = "Description")]
    description: String,
    #[serde(rename = "Source")]
    source: String,
    #[serde(rename = "DataType")]
    data_type: String,
    #[serde(rename = "AllowedValues")]
    allowed_values: Option<String>,
    #[serde(rename = "IsModifiable")]
    is_modifiable: bool,
    #[serde(rename = "ConditionallyModifiable", default)]
    conditionally_modifiable: bool,
    #[serde(rename = "MinimumEngineVersion")]
    minimum_engine_version: String,
    #[serde(rename = "ChangeType")]
    change_type: String,
    #[serde(rename = "ValuesFrom")]
    values_from: Option<String>,
}

/// One row of `node-types.json`: `CacheNodeType` plus one string per column.
type NodeTypeRow = BTreeMap<String, String>;

static NODE_TYPE_ROWS: OnceLock<Vec<NodeTypeRow>> = OnceLock::new();

fn node_type_rows() -> &'static [NodeTypeRow] {
    NODE_TYPE_ROWS.get_or_init(|| {
        serde_json::from_str(NODE_TYPES).expect("data/node-types.json is valid (unit-tested)")
    })
}

pub(crate) fn node_type_names() -> impl Iterator<Item = &'static str> {
    node_type_rows()
        .iter()
        .filter_map(|row| row.get("CacheNodeType").map(String::as_str))
}

/// Parses every embedded file. Panics on malformed data: the files are part of
/// the build, and `tests::every_family_loads` parses all of them.
pub(crate) fn load() -> Vec<Family> {
    let mut base = Vec::with_capacity(FILES.len());
    let mut cluster_on = Vec::new();
    for (name, text) in FILES {
        let raw: RawFamily = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("data/{name}.json is malformed: {e}"));
        assert_eq!(&raw.family, name, "data/{name}.json names another family");
        let family = convert(raw.family.clone(), &raw);
        if raw.cluster_on_variant {
            let mut on = convert(format!("{}.cluster.on", raw.family), &raw);
            for p in on.params.iter_mut().filter(|p| p.name == "cluster-enabled") {
                p.default_value = Some("yes".to_owned());
            }
            cluster_on.push(on);
        }
        base.push(family);
    }
    base.extend(cluster_on);
    base
}

fn convert(name: String, raw: &RawFamily) -> Family {
    let mut params: Vec<ParamDef> = raw.parameters.iter().map(|p| param(&name, p)).collect();
    params.sort_by(|a, b| a.name.cmp(&b.name));
    let mut node_type_specific: Vec<NodeTypeSpecificDef> = raw
        .node_type_specific
        .iter()
        .map(|p| node_specific(&name, p))
        .collect();
    node_type_specific.sort_by(|a, b| a.name.cmp(&b.name));
    Family {
        name,
        engine: raw.engine.clone(),
        params,
        node_type_specific,
    }
}

fn data_type(family: &str, p: &RawParam) -> DataType {
    DataType::parse(&p.data_type)
        .unwrap_or_else(|| panic!("{family}/{}: bad DataType {}", p.name, p.data_type))
}

fn change_type(family: &str, p: &RawParam) -> ChangeType {
    ChangeType::parse(&p.change_type)
        .unwrap_or_else(|| panic!("{family}/{}: bad ChangeType {}", p.name, p.change_type))
}

fn param(family: &str, p: &RawParam) -> ParamDef {
    ParamDef {
        name: p.name.clone(),
        default_value: p.value.clone(),
        description: p.description.clone(),
        source: p.source.clone(),
        data_type: data_type(family, p),
        allowed_values: p.allowed_values.clone(),
        is_modifiable: p.is_modifiable,
        conditionally_modifiable: p.conditionally_modifiable,
        minimum_engine_version: p.minimum_engine_version.clone(),
        change_type: change_type(family, p),
    }
}

fn node_specific(family: &str, p: &RawParam) -> NodeTypeSpecificDef {
    let column = p
        .values_from
        .as_deref()
        .unwrap_or_else(|| panic!("{family}/{}: no ValuesFrom", p.name));
    let values = node_type_rows()
        .iter()
        .map(|row| {
            let node_type = row.get("CacheNodeType").cloned().unwrap_or_default();
            let value = row
                .get(column)
                .cloned()
                .unwrap_or_else(|| panic!("node-types.json: {node_type} has no {column}"));
            (node_type, value)
        })
        .collect();
    NodeTypeSpecificDef {
        name: p.name.clone(),
        description: p.description.clone(),
        source: p.source.clone(),
        data_type: data_type(family, p),
        allowed_values: p.allowed_values.clone(),
        is_modifiable: p.is_modifiable,
        minimum_engine_version: p.minimum_engine_version.clone(),
        change_type: change_type(family, p),
        values,
    }
}
