//! SQLite state through sqlx (no compile-time macros: plain queries, rows mapped
//! by hand). WAL mode; every mutation that touches several rows runs in one
//! transaction so a crash never leaves half a resource.

use crate::error::ApiError;
use crate::ids::{CacheClusterId, CacheNodeId};
use crate::model::{
    ClusterRecord, ClusterSpec, EventRecord, GroupRecord, NodeRecord, ParameterGroupRecord,
    SnapshotRecord, SubnetGroupRecord,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqlitePool};
use std::borrow::Cow;
use std::path::Path;

/// The migrations in `migrations/`, embedded so the binary is self-contained.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../../migrations/0001_init.sql")),
    (
        2,
        "groups",
        include_str!("../../../migrations/0002_groups.sql"),
    ),
    (
        3,
        "replication_groups",
        include_str!("../../../migrations/0003_replication_groups.sql"),
    ),
    (
        4,
        "snapshots",
        include_str!("../../../migrations/0004_snapshots.sql"),
    ),
    (
        5,
        "serverless",
        include_str!("../../../migrations/0005_serverless.sql"),
    ),
    (
        6,
        "users",
        include_str!("../../../migrations/0006_users.sql"),
    ),
];

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    pub async fn open(path: &Path) -> Result<Store, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5))
            // SQLite checkpoints the WAL inside whichever commit crosses 1000 pages, and
            // that commit pays the fsync (10-20 ms on a slow disk): a reset or create would
            // now and then take 10x its usual time. Checkpoint in the background instead.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let checkpoints = pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if checkpoints.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&checkpoints)
                    .await
                {
                    tracing::debug!(error = %e, "WAL checkpoint");
                }
            }
        });
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations).run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn cluster(
        &self,
        region: &str,
        id: &CacheClusterId,
    ) -> Result<Option<ClusterRecord>, ApiError> {
        let row =
            sqlx::query("SELECT * FROM cache_clusters WHERE region = ? AND cache_cluster_id = ?")
                .bind(region)
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(r) => Ok(Some(self.cluster_from_row(&r).await?)),
            None => Ok(None),
        }
    }

    /// All clusters of a region, ordered by id (stable for pagination).
    pub async fn clusters(&self, region: &str) -> Result<Vec<ClusterRecord>, ApiError> {
        let rows =
            sqlx::query("SELECT * FROM cache_clusters WHERE region = ? ORDER BY cache_cluster_id")
                .bind(region)
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.cluster_from_row(r).await?);
        }
        Ok(out)
    }

    /// Every cluster in every region (start-up reconciliation).
    pub async fn all_clusters(&self) -> Result<Vec<ClusterRecord>, ApiError> {
        let rows = sqlx::query("SELECT * FROM cache_clusters ORDER BY region, cache_cluster_id")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.cluster_from_row(r).await?);
        }
        Ok(out)
    }

    async fn cluster_from_row(&self, r: &SqliteRow) -> Result<ClusterRecord, ApiError> {
        let region: String = r.try_get("region")?;
        let id: String = r.try_get("cache_cluster_id")?;
        let spec: String = r.try_get("spec")?;
        let nodes = sqlx::query(
            "SELECT * FROM cache_nodes WHERE region = ? AND cache_cluster_id = ? ORDER BY cache_node_id",
        )
        .bind(&region)
        .bind(&id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(node_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        Ok(ClusterRecord {
            region,
            id: CacheClusterId::from_stored(id),
            replication_group_id: r.try_get("replication_group_id")?,
            status: r.try_get("status")?,
            created_ms: r.try_get("created_ms")?,
            spec: serde_json::from_str::<ClusterSpec>(&spec)?,
            nodes,
        })
    }

    /// Insert a cluster and its nodes atomically.
    pub async fn insert_cluster(&self, c: &ClusterRecord) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO cache_clusters (region, cache_cluster_id, replication_group_id, status, created_ms, spec) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.region)
        .bind(c.id.as_str())
        .bind(&c.replication_group_id)
        .bind(&c.status)
        .bind(c.created_ms)
        .bind(serde_json::to_string(&c.spec)?)
        .execute(&mut *tx)
        .await?;
        for n in &c.nodes {
            insert_node(&mut tx, &c.region, &c.id, n).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replace a cluster's status, spec and node set atomically.
    pub async fn update_cluster(&self, c: &ClusterRecord) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE cache_clusters SET status = ?, spec = ? WHERE region = ? AND cache_cluster_id = ?")
            .bind(&c.status)
            .bind(serde_json::to_string(&c.spec)?)
            .bind(&c.region)
            .bind(c.id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM cache_nodes WHERE region = ? AND cache_cluster_id = ?")
            .bind(&c.region)
            .bind(c.id.as_str())
            .execute(&mut *tx)
            .await?;
        for n in &c.nodes {
            insert_node(&mut tx, &c.region, &c.id, n).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Delete a cluster, its nodes and its tags.
    pub async fn delete_cluster(
        &self,
        region: &str,
        id: &CacheClusterId,
        arn: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM cache_clusters WHERE region = ? AND cache_cluster_id = ?")
            .bind(region)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tags WHERE arn = ?")
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every (ip, port) some node holds, in any region.
    pub async fn used_endpoints(&self) -> Result<Vec<(String, u16)>, ApiError> {
        let rows = sqlx::query(
            "SELECT bind_ip, port FROM cache_nodes UNION ALL SELECT bind_ip, port FROM endpoints",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let ip: String = r.try_get("bind_ip")?;
                let port: i64 = r.try_get("port")?;
                Ok((ip, u16::try_from(port).unwrap_or(0)))
            })
            .collect()
    }

    pub async fn tags(&self, arn: &str) -> Result<Vec<(String, String)>, ApiError> {
        let rows = sqlx::query("SELECT key, value FROM tags WHERE arn = ? ORDER BY position, key")
            .bind(arn)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    /// Add or overwrite tags, then return the full set.
    pub async fn put_tags(&self, arn: &str, tags: &[(String, String)]) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        for (k, v) in tags {
            sqlx::query(
                "INSERT INTO tags (arn, key, value, position) \
                 VALUES (?, ?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM tags WHERE arn = ?)) \
                 ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
            )
            .bind(arn)
            .bind(k)
            .bind(v)
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_tags(&self, arn: &str, keys: &[String]) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        for k in keys {
            sqlx::query("DELETE FROM tags WHERE arn = ? AND key = ?")
                .bind(arn)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn parameter_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<ParameterGroupRecord>, ApiError> {
        let row = sqlx::query("SELECT * FROM cache_parameter_groups WHERE region = ? AND name = ?")
            .bind(region)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.parameter_group_from_row(&r).await?)),
            None => Ok(None),
        }
    }

    pub async fn parameter_groups(
        &self,
        region: &str,
    ) -> Result<Vec<ParameterGroupRecord>, ApiError> {
        let rows =
            sqlx::query("SELECT * FROM cache_parameter_groups WHERE region = ? ORDER BY name")
                .bind(region)
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.parameter_group_from_row(r).await?);
        }
        Ok(out)
    }

    async fn parameter_group_from_row(
        &self,
        r: &SqliteRow,
    ) -> Result<ParameterGroupRecord, ApiError> {
        let region: String = r.try_get("region")?;
        let name: String = r.try_get("name")?;
        let values = sqlx::query("SELECT name, value FROM cache_parameters WHERE region = ? AND group_name = ? ORDER BY name")
            .bind(&region)
            .bind(&name)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("value")?)))
            .collect::<Result<Vec<(String, String)>, ApiError>>()?;
        Ok(ParameterGroupRecord {
            region,
            name,
            family: r.try_get("family")?,
            description: r.try_get("description")?,
            values: values.into_iter().collect(),
        })
    }

    pub async fn insert_parameter_group(&self, g: &ParameterGroupRecord) -> Result<(), ApiError> {
        sqlx::query("INSERT INTO cache_parameter_groups (region, name, family, description, created_ms) VALUES (?, ?, ?, ?, ?)")
            .bind(&g.region)
            .bind(&g.name)
            .bind(&g.family)
            .bind(&g.description)
            .bind(crate::now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Set (`Some`) or reset (`None`) user values of a group atomically.
    pub async fn set_parameters(
        &self,
        region: &str,
        group: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        for (name, value) in changes {
            match value {
                Some(v) => {
                    sqlx::query(
                        "INSERT INTO cache_parameters (region, group_name, name, value) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (region, group_name, name) DO UPDATE SET value = excluded.value",
                    )
                    .bind(region)
                    .bind(group)
                    .bind(name)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM cache_parameters WHERE region = ? AND group_name = ? AND name = ?")
                        .bind(region)
                        .bind(group)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_parameter_group(
        &self,
        region: &str,
        name: &str,
        arn: &str,
    ) -> Result<(), ApiError> {
        self.delete_named("cache_parameter_groups", region, name, arn)
            .await
    }

    pub async fn subnet_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<SubnetGroupRecord>, ApiError> {
        let row = sqlx::query("SELECT * FROM cache_subnet_groups WHERE region = ? AND name = ?")
            .bind(region)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subnet_group_from_row).transpose()
    }

    pub async fn subnet_groups(&self, region: &str) -> Result<Vec<SubnetGroupRecord>, ApiError> {
        let rows = sqlx::query("SELECT * FROM cache_subnet_groups WHERE region = ? ORDER BY name")
            .bind(region)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subnet_group_from_row).collect()
    }

    /// Insert or replace a subnet group.
    pub async fn put_subnet_group(&self, g: &SubnetGroupRecord) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO cache_subnet_groups (region, name, description, vpc_id, subnets, created_ms) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (region, name) DO UPDATE SET description = excluded.description, vpc_id = excluded.vpc_id, subnets = excluded.subnets",
        )
        .bind(&g.region)
        .bind(&g.name)
        .bind(&g.description)
        .bind(&g.vpc_id)
        .bind(serde_json::to_string(&g.subnets)?)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_subnet_group(
        &self,
        region: &str,
        name: &str,
        arn: &str,
    ) -> Result<(), ApiError> {
        self.delete_named("cache_subnet_groups", region, name, arn)
            .await
    }

    pub async fn replication_group(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<GroupRecord>, ApiError> {
        let row = sqlx::query(
            "SELECT * FROM replication_groups WHERE region = ? AND replication_group_id = ?",
        )
        .bind(region)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    pub async fn replication_groups(&self, region: &str) -> Result<Vec<GroupRecord>, ApiError> {
        let rows = sqlx::query(
            "SELECT * FROM replication_groups WHERE region = ? ORDER BY replication_group_id",
        )
        .bind(region)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    pub async fn all_replication_groups(&self) -> Result<Vec<GroupRecord>, ApiError> {
        let rows =
            sqlx::query("SELECT * FROM replication_groups ORDER BY region, replication_group_id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(group_from_row).collect()
    }

    /// Insert or replace a group and the given member clusters atomically.
    pub async fn put_replication_group(
        &self,
        g: &GroupRecord,
        members: &[ClusterRecord],
    ) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO replication_groups (region, replication_group_id, status, created_ms, spec) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (region, replication_group_id) DO UPDATE SET status = excluded.status, spec = excluded.spec",
        )
        .bind(&g.region)
        .bind(&g.id)
        .bind(&g.status)
        .bind(g.created_ms)
        .bind(serde_json::to_string(&g.spec)?)
        .execute(&mut *tx)
        .await?;
        for c in members {
            upsert_cluster(&mut tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Delete a group, its endpoints and tags, and the given member clusters (with their tags).
    pub async fn delete_replication_group(
        &self,
        region: &str,
        id: &str,
        arn: &str,
        members: &[(CacheClusterId, String)],
    ) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM replication_groups WHERE region = ? AND replication_group_id = ?")
            .bind(region)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM endpoints WHERE region = ? AND owner = ?")
            .bind(region)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tags WHERE arn = ?")
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        for (m, m_arn) in members {
            sqlx::query("DELETE FROM cache_clusters WHERE region = ? AND cache_cluster_id = ?")
                .bind(region)
                .bind(m.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM tags WHERE arn = ?")
                .bind(m_arn)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn put_endpoint(
        &self,
        region: &str,
        owner: &str,
        kind: &str,
        ip: &str,
        port: u16,
    ) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO endpoints (region, owner, kind, bind_ip, port) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (region, owner, kind) DO UPDATE SET bind_ip = excluded.bind_ip, port = excluded.port",
        )
        .bind(region)
        .bind(owner)
        .bind(kind)
        .bind(ip)
        .bind(i64::from(port))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_endpoint(
        &self,
        region: &str,
        owner: &str,
        kind: &str,
    ) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM endpoints WHERE region = ? AND owner = ? AND kind = ?")
            .bind(region)
            .bind(owner)
            .bind(kind)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn endpoint(
        &self,
        region: &str,
        owner: &str,
        kind: &str,
    ) -> Result<Option<(String, u16)>, ApiError> {
        let row = sqlx::query(
            "SELECT bind_ip, port FROM endpoints WHERE region = ? AND owner = ? AND kind = ?",
        )
        .bind(region)
        .bind(owner)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => {
                let port: i64 = r.try_get("port")?;
                Ok(Some((
                    r.try_get("bind_ip")?,
                    u16::try_from(port).unwrap_or(0),
                )))
            }
            None => Ok(None),
        }
    }

    pub async fn add_event(
        &self,
        region: &str,
        source: &str,
        source_type: &str,
        message: &str,
    ) -> Result<(), ApiError> {
        sqlx::query("INSERT INTO events (region, source_identifier, source_type, message, date_ms) VALUES (?, ?, ?, ?, ?)")
            .bind(region)
            .bind(source)
            .bind(source_type)
            .bind(message)
            .bind(crate::now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Events of a region between two times, oldest first.
    pub async fn events(
        &self,
        region: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<EventRecord>, ApiError> {
        let rows = sqlx::query("SELECT * FROM events WHERE region = ? AND date_ms >= ? AND date_ms <= ? ORDER BY date_ms, id")
            .bind(region)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRecord {
                    id: r.try_get("id")?,
                    source_identifier: r.try_get("source_identifier")?,
                    source_type: r.try_get("source_type")?,
                    message: r.try_get("message")?,
                    date_ms: r.try_get("date_ms")?,
                })
            })
            .collect()
    }

    /// Forget events older than `before_ms` (ElastiCache keeps 14 days).
    pub async fn prune_events(&self, before_ms: i64) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM events WHERE date_ms < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn snapshot(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<SnapshotRecord>, ApiError> {
        let row = sqlx::query("SELECT * FROM snapshots WHERE region = ? AND name = ?")
            .bind(region)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(snapshot_from_row).transpose()
    }

    pub async fn snapshots(&self, region: &str) -> Result<Vec<SnapshotRecord>, ApiError> {
        let rows = sqlx::query("SELECT * FROM snapshots WHERE region = ? ORDER BY name")
            .bind(region)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(snapshot_from_row).collect()
    }

    pub async fn all_snapshots(&self) -> Result<Vec<SnapshotRecord>, ApiError> {
        let rows = sqlx::query("SELECT * FROM snapshots ORDER BY region, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(snapshot_from_row).collect()
    }

    pub async fn put_snapshot(&self, s: &SnapshotRecord) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO snapshots (region, name, status, source, created_ms, spec) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (region, name) DO UPDATE SET status = excluded.status, spec = excluded.spec",
        )
        .bind(&s.region)
        .bind(&s.name)
        .bind(&s.status)
        .bind(&s.source)
        .bind(s.created_ms)
        .bind(serde_json::to_string(&s.spec)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_snapshot(
        &self,
        region: &str,
        name: &str,
        arn: &str,
    ) -> Result<(), ApiError> {
        self.delete_named("snapshots", region, name, arn).await
    }

    /// Delete a resource keyed by (region, name) and its tags, atomically.
    async fn delete_named(
        &self,
        table: &'static str,
        region: &str,
        name: &str,
        arn: &str,
    ) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE region = ? AND name = ?"
        )))
        .bind(region)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM tags WHERE arn = ?")
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A stored JSON spec of a named resource (users, user groups).
    pub async fn named_spec<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        region: &str,
        name: &str,
    ) -> Result<Option<(i64, T)>, ApiError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT created_ms, spec FROM {table} WHERE region = ? AND name = ?"
        )))
        .bind(region)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<(i64, T), ApiError> {
            let spec: String = r.try_get("spec")?;
            Ok((r.try_get("created_ms")?, serde_json::from_str(&spec)?))
        })
        .transpose()
    }

    /// Every stored spec of a table in a region, by name.
    pub async fn named_specs<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        region: &str,
    ) -> Result<Vec<(String, i64, T)>, ApiError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT name, created_ms, spec FROM {table} WHERE region = ? ORDER BY name"
        )))
        .bind(region)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let spec: String = r.try_get("spec")?;
                Ok((
                    r.try_get("name")?,
                    r.try_get("created_ms")?,
                    serde_json::from_str(&spec)?,
                ))
            })
            .collect()
    }

    /// Insert or replace a named spec (users, user groups).
    pub async fn put_named_spec<T: serde::Serialize>(
        &self,
        table: &'static str,
        region: &str,
        name: &str,
        created_ms: i64,
        spec: &T,
    ) -> Result<(), ApiError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (region, name, created_ms, spec) VALUES (?, ?, ?, ?) \
             ON CONFLICT (region, name) DO UPDATE SET spec = excluded.spec"
        )))
        .bind(region)
        .bind(name)
        .bind(created_ms)
        .bind(serde_json::to_string(spec)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delete a named spec and its tags.
    pub async fn delete_named_spec(
        &self,
        table: &'static str,
        region: &str,
        name: &str,
        arn: &str,
    ) -> Result<(), ApiError> {
        self.delete_named(table, region, name, arn).await
    }

    /// Security group ingress rules set through the admin API, by group id.
    pub async fn security_group_rules(&self) -> Result<Vec<(String, Vec<String>)>, ApiError> {
        let rows = sqlx::query("SELECT id, cidrs FROM security_group_rules ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let cidrs: String = r.try_get("cidrs")?;
                Ok((r.try_get("id")?, serde_json::from_str(&cidrs)?))
            })
            .collect()
    }

    /// Set (Some) or remove (None) a security group's ingress rules.
    pub async fn put_security_group_rules(
        &self,
        id: &str,
        cidrs: Option<&[String]>,
    ) -> Result<(), ApiError> {
        match cidrs {
            Some(c) => {
                sqlx::query(
                    "INSERT INTO security_group_rules (id, cidrs) VALUES (?, ?) \
                     ON CONFLICT (id) DO UPDATE SET cidrs = excluded.cidrs",
                )
                .bind(id)
                .bind(serde_json::to_string(c)?)
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM security_group_rules WHERE id = ?")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Delete every row of every resource table (the admin reset).
    pub async fn reset(&self) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        let statements = [
            "cache_nodes",
            "cache_clusters",
            "replication_groups",
            "endpoints",
            "cache_parameters",
            "cache_parameter_groups",
            "cache_subnet_groups",
            "tags",
            "events",
            "snapshots",
            "users",
            "user_groups",
            "security_group_rules",
            "cache_security_groups",
            "api_resources",
        ]
        .map(|table| format!("DELETE FROM {table};"))
        .concat();
        // One batch rather than a statement per table: every statement is a round
        // trip to the database thread, and resets must stay within milliseconds.
        sqlx::raw_sql(AssertSqlSafe(statements))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One resource of the generic table (serverless caches and snapshots,
    /// global datastores, reserved nodes).
    pub async fn resource(
        &self,
        region: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<ResourceRow>, ApiError> {
        let row =
            sqlx::query("SELECT * FROM api_resources WHERE region = ? AND kind = ? AND name = ?")
                .bind(region)
                .bind(kind)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(resource_from_row).transpose()
    }

    /// Resources of one kind in a region (`None`: every region), ordered by name.
    pub async fn resources(
        &self,
        region: Option<&str>,
        kind: &str,
    ) -> Result<Vec<ResourceRow>, ApiError> {
        let rows = match region {
            Some(r) => {
                sqlx::query(
                    "SELECT * FROM api_resources WHERE region = ? AND kind = ? ORDER BY name",
                )
                .bind(r)
                .bind(kind)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM api_resources WHERE kind = ? ORDER BY region, name")
                    .bind(kind)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(resource_from_row).collect()
    }

    pub async fn put_resource(&self, r: &ResourceRow) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO api_resources (region, kind, name, status, created_ms, spec) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (region, kind, name) DO UPDATE SET status = excluded.status, spec = excluded.spec",
        )
        .bind(&r.region)
        .bind(&r.kind)
        .bind(&r.name)
        .bind(&r.status)
        .bind(r.created_ms)
        .bind(&r.spec)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delete a resource, its tags and the endpoints it owns, atomically.
    pub async fn delete_resource(
        &self,
        region: &str,
        kind: &str,
        name: &str,
        arn: &str,
        endpoint_owner: Option<&str>,
    ) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_resources WHERE region = ? AND kind = ? AND name = ?")
            .bind(region)
            .bind(kind)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tags WHERE arn = ?")
            .bind(arn)
            .execute(&mut *tx)
            .await?;
        if let Some(owner) = endpoint_owner {
            sqlx::query("DELETE FROM endpoints WHERE region = ? AND owner = ?")
                .bind(region)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn insert_node(
    tx: &mut sqlx::SqliteConnection,
    region: &str,
    cluster: &CacheClusterId,
    n: &NodeRecord,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO cache_nodes (region, cache_cluster_id, cache_node_id, status, bind_ip, port, availability_zone, created_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(region)
    .bind(cluster.as_str())
    .bind(i64::from(n.id.number()))
    .bind(&n.status)
    .bind(&n.bind_ip)
    .bind(i64::from(n.port))
    .bind(&n.availability_zone)
    .bind(n.created_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn group_from_row(r: &SqliteRow) -> Result<GroupRecord, ApiError> {
    let spec: String = r.try_get("spec")?;
    Ok(GroupRecord {
        region: r.try_get("region")?,
        id: r.try_get("replication_group_id")?,
        status: r.try_get("status")?,
        created_ms: r.try_get("created_ms")?,
        spec: serde_json::from_str(&spec)?,
    })
}

/// Insert a cluster or replace its row and nodes.
async fn upsert_cluster(
    tx: &mut sqlx::SqliteConnection,
    c: &ClusterRecord,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO cache_clusters (region, cache_cluster_id, replication_group_id, status, created_ms, spec) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (region, cache_cluster_id) DO UPDATE SET \
         replication_group_id = excluded.replication_group_id, status = excluded.status, spec = excluded.spec",
    )
    .bind(&c.region)
    .bind(c.id.as_str())
    .bind(&c.replication_group_id)
    .bind(&c.status)
    .bind(c.created_ms)
    .bind(serde_json::to_string(&c.spec)?)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM cache_nodes WHERE region = ? AND cache_cluster_id = ?")
        .bind(&c.region)
        .bind(c.id.as_str())
        .execute(&mut *tx)
        .await?;
    for n in &c.nodes {
        insert_node(&mut *tx, &c.region, &c.id, n).await?;
    }
    Ok(())
}

fn snapshot_from_row(r: &SqliteRow) -> Result<SnapshotRecord, ApiError> {
    let spec: String = r.try_get("spec")?;
    Ok(SnapshotRecord {
        region: r.try_get("region")?,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
        source: r.try_get("source")?,
        created_ms: r.try_get("created_ms")?,
        spec: serde_json::from_str(&spec)?,
    })
}

fn subnet_group_from_row(r: &SqliteRow) -> Result<SubnetGroupRecord, ApiError> {
    let subnets: String = r.try_get("subnets")?;
    Ok(SubnetGroupRecord {
        region: r.try_get("region")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        vpc_id: r.try_get("vpc_id")?,
        subnets: serde_json::from_str(&subnets)?,
    })
}

fn node_from_row(r: &SqliteRow) -> Result<NodeRecord, ApiError> {
    let id: i64 = r.try_get("cache_node_id")?;
    let port: i64 = r.try_get("port")?;
    Ok(NodeRecord {
        id: CacheNodeId::new(
            u16::try_from(id).map_err(|_| ApiError::Internal("node id out of range".into()))?,
        ),
        status: r.try_get("status")?,
        bind_ip: r.try_get("bind_ip")?,
        port: u16::try_from(port).map_err(|_| ApiError::Internal("port out of range".into()))?,
        availability_zone: r.try_get("availability_zone")?,
        created_ms: r.try_get("created_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (version, name, _)) in files.iter().zip(MIGRATIONS) {
            assert_eq!(file, &format!("{version:04}_{name}.sql"));
        }
    }

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir()
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("t.db");
        let s = Store::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(s
            .subnet_groups("us-east-1")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
        s.close().await;
        let s = Store::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(s
            .parameter_groups("us-east-1")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
    }
}

/// A row of `api_resources`; `spec` is the resource's JSON settings.
#[derive(Debug, Clone)]
pub struct ResourceRow {
    pub region: String,
    pub kind: String,
    pub name: String,
    pub status: String,
    pub created_ms: i64,
    pub spec: String,
}

fn resource_from_row(r: &SqliteRow) -> Result<ResourceRow, ApiError> {
    Ok(ResourceRow {
        region: r.try_get("region")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
        created_ms: r.try_get("created_ms")?,
        spec: r.try_get("spec")?,
    })
}
