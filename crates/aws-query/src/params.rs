//! Decoding of query-protocol parameters.
//!
//! botocore and the Go SDK flatten every structure into dotted keys:
//! `Tags.Tag.1.Key=a`, `SecurityGroupIds.SecurityGroupId.2=sg`, and an explicitly
//! empty list is sent as the bare key with an empty value (`CacheSecurityGroupNames=`).
//! List indices are 1-based. The member name in the key comes from the API model
//! and differs per list, so callers name it.

use std::collections::BTreeMap;

/// A client mistake in the request parameters; maps to an AWS error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("The request must contain the parameter {0}")]
    MissingParameter(String),
    #[error("{0}")]
    InvalidParameterValue(String),
}

/// The decoded parameters of one request (or of one nested structure in it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Decode a URL query string and a form body together (AWS accepts both, and
    /// a body value wins over a query-string value of the same name).
    pub fn from_query_and_body(query: &str, body: &[u8]) -> Params {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            map.insert(k.into_owned(), v.into_owned());
        }
        for (k, v) in form_urlencoded::parse(body) {
            map.insert(k.into_owned(), v.into_owned());
        }
        Params { map }
    }

    /// Build from explicit pairs (tests, nested structures).
    pub fn from_pairs<I, K, V>(pairs: I) -> Params
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Params {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every key, for diagnostics.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// A scalar string; `None` when absent.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A required scalar string. An empty value counts as missing, as AWS treats it.
    pub fn required(&self, name: &str) -> Result<&str, QueryError> {
        match self.str(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(QueryError::MissingParameter(name.to_string())),
        }
    }

    /// A boolean; only the exact spellings the SDKs emit are accepted.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, QueryError> {
        match self.str(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(QueryError::InvalidParameterValue(format!(
                "Invalid boolean value for parameter {name}: {v}"
            ))),
        }
    }

    /// An integer.
    pub fn int(&self, name: &str) -> Result<Option<i64>, QueryError> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                QueryError::InvalidParameterValue(format!(
                    "Invalid value for parameter {name}: {v} is not an integer"
                ))
            }),
        }
    }

    /// The nested structure under `prefix.` (`AuthenticationMode.Type` → `Type`).
    pub fn nested(&self, prefix: &str) -> Params {
        let dotted = format!("{prefix}.");
        Params {
            map: self
                .map
                .range(dotted.clone()..)
                .take_while(|(k, _)| k.starts_with(&dotted))
                .map(|(k, v)| (k[dotted.len()..].to_string(), v.clone()))
                .collect(),
        }
    }

    /// Whether any key is `name` or starts with `name.`.
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name) || !self.nested(name).is_empty()
    }

    /// A list of scalars sent as `name.member.N`. `None` when the parameter is
    /// absent; `Some(vec![])` for the explicit empty list `name=`.
    pub fn list(&self, name: &str, member: &str) -> Result<Option<Vec<String>>, QueryError> {
        let items = self.indexed(name, member)?;
        if items.is_empty() {
            return Ok(self.map.contains_key(name).then(Vec::new));
        }
        let mut out = Vec::with_capacity(items.len());
        for (_, sub) in items {
            match sub.map.get("") {
                Some(v) => out.push(v.clone()),
                None => {
                    return Err(QueryError::InvalidParameterValue(format!(
                        "Invalid list parameter {name}"
                    )))
                }
            }
        }
        Ok(Some(out))
    }

    /// A list of structures sent as `name.member.N.Field=…`.
    pub fn struct_list(&self, name: &str, member: &str) -> Result<Option<Vec<Params>>, QueryError> {
        let items = self.indexed(name, member)?;
        if items.is_empty() {
            return Ok(self.map.contains_key(name).then(Vec::new));
        }
        Ok(Some(items.into_iter().map(|(_, p)| p).collect()))
    }

    /// Collect `name.member.N[.rest]` groups, ordered by N. The scalar value of an
    /// element is stored under the empty key.
    fn indexed(&self, name: &str, member: &str) -> Result<Vec<(u32, Params)>, QueryError> {
        let prefix = format!("{name}.{member}.");
        let mut groups: BTreeMap<u32, Params> = BTreeMap::new();
        for (k, v) in self.map.range(prefix.clone()..) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            let (index, tail) = match rest.split_once('.') {
                Some((i, t)) => (i, t),
                None => (rest, ""),
            };
            let n: u32 = index.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                QueryError::InvalidParameterValue(format!("Invalid list index in parameter {k}"))
            })?;
            groups
                .entry(n)
                .or_default()
                .map
                .insert(tail.to_string(), v.clone());
        }
        Ok(groups.into_iter().collect())
    }

    /// Tags sent as `Tags.Tag.N.Key` / `Tags.Tag.N.Value`.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<(String, String)>>, QueryError> {
        let Some(items) = self.struct_list(name, "Tag")? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let key = item
                .str("Key")
                .ok_or_else(|| QueryError::MissingParameter(format!("{name}.Tag.N.Key")))?;
            out.push((key.to_string(), item.str("Value").unwrap_or("").to_string()));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Params {
        Params::from_query_and_body("", s.as_bytes())
    }

    #[test]
    fn scalars_and_bools() {
        let q = p(
            "Action=CreateCacheCluster&Version=2015-02-02&Port=6379&AutoMinorVersionUpgrade=true",
        );
        assert_eq!(q.str("Action"), Some("CreateCacheCluster"));
        assert_eq!(q.int("Port").unwrap(), Some(6379));
        assert_eq!(q.bool("AutoMinorVersionUpgrade").unwrap(), Some(true));
        assert_eq!(q.bool("Missing").unwrap(), None);
        assert!(q.required("CacheClusterId").is_err());
        assert!(p("X=maybe").bool("X").is_err());
        assert!(p("X=12a").int("X").is_err());
    }

    #[test]
    fn query_string_and_body_merge() {
        let q = Params::from_query_and_body("Action=A&Version=1", b"Version=2015-02-02");
        assert_eq!(q.str("Action"), Some("A"));
        assert_eq!(q.str("Version"), Some("2015-02-02"));
    }

    #[test]
    fn every_list_pattern_from_the_model() {
        // One case per member-name style in api.md §2.1.
        let cases: &[(&str, &str)] = &[
            ("CacheSecurityGroupNames", "CacheSecurityGroupName"),
            ("SecurityGroupIds", "SecurityGroupId"),
            ("TagKeys", "member"),
            ("SubnetIds", "SubnetIdentifier"),
            ("SubnetIds", "SubnetId"),
            ("SnapshotArns", "SnapshotArn"),
            ("SnapshotArnsToRestore", "SnapshotArn"),
            ("PreferredAvailabilityZones", "PreferredAvailabilityZone"),
            ("NewAvailabilityZones", "PreferredAvailabilityZone"),
            ("PreferredOutpostArns", "PreferredOutpostArn"),
            ("CacheNodeIdsToRemove", "CacheNodeId"),
            ("CacheNodeIdsToReboot", "CacheNodeId"),
            ("PreferredCacheClusterAZs", "AvailabilityZone"),
            ("UserGroupIds", "member"),
            ("UserGroupIdsToAdd", "member"),
            ("UserGroupIdsToRemove", "member"),
            ("ReplicasToRemove", "member"),
            ("NodeGroupsToRemove", "NodeGroupToRemove"),
            ("NodeGroupsToRetain", "NodeGroupToRetain"),
            ("Passwords", "member"),
            ("UserIds", "member"),
            ("UserIdsToAdd", "member"),
            ("UserIdsToRemove", "member"),
            ("ReplicationGroupIds", "member"),
            ("CacheClusterIds", "member"),
            ("ServiceUpdateStatus", "member"),
            ("UpdateActionStatus", "member"),
            ("GlobalNodeGroupsToRemove", "GlobalNodeGroupId"),
            ("GlobalNodeGroupsToRetain", "GlobalNodeGroupId"),
        ];
        for (name, member) in cases {
            // Indices out of order and past 9 must come back sorted numerically.
            let body = format!("{name}.{member}.10=j&{name}.{member}.2=b&{name}.{member}.1=a");
            let got = p(&body).list(name, member).unwrap();
            assert_eq!(
                got,
                Some(vec!["a".into(), "b".into(), "j".into()]),
                "{name}"
            );
            assert_eq!(
                p(&format!("{name}=")).list(name, member).unwrap(),
                Some(vec![])
            );
            assert_eq!(p("Other=1").list(name, member).unwrap(), None);
        }
    }

    #[test]
    fn structure_lists_and_nested_lists() {
        let q = p("Tags.Tag.1.Key=a&Tags.Tag.1.Value=b&Tags.Tag.2.Key=c&Tags.Tag.2.Value=\
                   &NodeGroupConfiguration.NodeGroupConfiguration.1.NodeGroupId=0001\
                   &NodeGroupConfiguration.NodeGroupConfiguration.1.Slots=0-8191\
                   &NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaAvailabilityZones.AvailabilityZone.2=us-east-1b\
                   &NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaAvailabilityZones.AvailabilityZone.1=us-east-1a\
                   &ReplicaConfiguration.ConfigureShard.1.NodeGroupId=0001\
                   &ReplicaConfiguration.ConfigureShard.1.NewReplicaCount=2\
                   &ReplicaConfiguration.ConfigureShard.1.PreferredAvailabilityZones.PreferredAvailabilityZone.1=z\
                   &ParameterNameValues.ParameterNameValue.1.ParameterName=maxmemory-policy\
                   &ParameterNameValues.ParameterNameValue.1.ParameterValue=allkeys-lru\
                   &LogDeliveryConfigurations.LogDeliveryConfigurationRequest.1.DestinationDetails.CloudWatchLogsDetails.LogGroup=lg\
                   &Filters.member.1.Name=engine&Filters.member.1.Values.member.1=redis\
                   &CustomerNodeEndpointList.member.1.Address=10.0.0.1&CustomerNodeEndpointList.member.1.Port=6379\
                   &AuthenticationMode.Type=password&AuthenticationMode.Passwords.member.1=pw");
        assert_eq!(
            q.tags("Tags").unwrap(),
            Some(vec![("a".into(), "b".into()), ("c".into(), "".into())])
        );
        let ngs = q
            .struct_list("NodeGroupConfiguration", "NodeGroupConfiguration")
            .unwrap()
            .unwrap();
        assert_eq!(ngs.len(), 1);
        assert_eq!(ngs[0].str("Slots"), Some("0-8191"));
        assert_eq!(
            ngs[0]
                .list("ReplicaAvailabilityZones", "AvailabilityZone")
                .unwrap(),
            Some(vec!["us-east-1a".into(), "us-east-1b".into()])
        );
        let shards = q
            .struct_list("ReplicaConfiguration", "ConfigureShard")
            .unwrap()
            .unwrap();
        assert_eq!(shards[0].int("NewReplicaCount").unwrap(), Some(2));
        assert_eq!(
            shards[0]
                .list("PreferredAvailabilityZones", "PreferredAvailabilityZone")
                .unwrap(),
            Some(vec!["z".into()])
        );
        let pv = q
            .struct_list("ParameterNameValues", "ParameterNameValue")
            .unwrap()
            .unwrap();
        assert_eq!(pv[0].str("ParameterValue"), Some("allkeys-lru"));
        let ld = q
            .struct_list(
                "LogDeliveryConfigurations",
                "LogDeliveryConfigurationRequest",
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            ld[0]
                .nested("DestinationDetails")
                .nested("CloudWatchLogsDetails")
                .str("LogGroup"),
            Some("lg")
        );
        let f = q.struct_list("Filters", "member").unwrap().unwrap();
        assert_eq!(
            f[0].list("Values", "member").unwrap(),
            Some(vec!["redis".into()])
        );
        let ep = q
            .struct_list("CustomerNodeEndpointList", "member")
            .unwrap()
            .unwrap();
        assert_eq!(ep[0].int("Port").unwrap(), Some(6379));
        let auth = q.nested("AuthenticationMode");
        assert_eq!(auth.str("Type"), Some("password"));
        assert_eq!(
            auth.list("Passwords", "member").unwrap(),
            Some(vec!["pw".into()])
        );
    }

    #[test]
    fn bad_indices_are_client_errors() {
        assert!(p("TagKeys.member.0=a").list("TagKeys", "member").is_err());
        assert!(p("TagKeys.member.x=a").list("TagKeys", "member").is_err());
        assert!(p("TagKeys.member.1.Sub=a")
            .list("TagKeys", "member")
            .is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let q = Params::from_query_and_body("", &body);
            let _ = q.list("A", "member");
            let _ = q.struct_list("A", "B");
            let _ = q.tags("Tags");
            let _ = q.int("A");
            let _ = q.bool("A");
        }
    }
}
