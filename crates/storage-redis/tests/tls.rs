//! TLS, configured the same way in every mode: `ARAGORA_REDIS_SSL=true` (or a `rediss://` URL)
//! and, for a private authority, `ARAGORA_REDIS_SSL_CA_CERTS`. Each test starts its own
//! deployment whose servers, Sentinels and cluster bus speak only TLS.

use std::path::PathBuf;
use std::sync::Arc;
use storage_core::{IntegrationConfig, IntegrationStore, StorageConfig, StorageError, Store};
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::{RedisBackend, RedisHAConfig, RedisIntegrationStore};
use storage_testkit::server::{RedisCluster, RedisSentinelGroup, RedisServer, fresh_namespace};

fn ring() -> Arc<KeyRing> {
    Arc::new(KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring"))
}

/// The settings an operator writes: TLS on, the authority's file, and the mode's own variables.
fn settings(ca: PathBuf, mode: impl FnOnce(StorageConfig) -> StorageConfig) -> RedisHAConfig {
    let config = mode(StorageConfig { redis_ssl: true, redis_ssl_ca_certs: Some(ca), ..StorageConfig::default() });
    RedisHAConfig::from_config(&config).expect("topology")
}

fn list(nodes: &[(String, u16)]) -> Option<String> {
    Some(nodes.iter().map(|(host, port)| format!("{host}:{port}")).collect::<Vec<_>>().join(","))
}

/// Saves and reads a sealed credential, and checks the node written to is a master.
async fn works_over_tls(topology: RedisHAConfig, role: &str) {
    let backend =
        RedisBackend::builder_for(topology.clone()).namespace(fresh_namespace()).sealer(ring()).connect().await.expect("connect over TLS");
    let store = RedisIntegrationStore::on(&backend);
    let tenant = storage_testkit::tenant("tls");
    store.set(&IntegrationConfig::new(tenant.clone(), "k", "slack").with_credential("token", "xoxb-1")).await.expect("save over TLS");
    let read = store.get(&tenant, "k").await.expect("read over TLS").expect("saved");
    assert_eq!(read.credentials["token"].expose(), "xoxb-1");
    assert_eq!(backend.health().await.expect("health").role, role);
    // Without the authority, the system's roots do not trust the certificate.
    let untrusted = RedisHAConfig { tls_ca_file: None, ..topology };
    let refused = RedisBackend::builder_for(untrusted).sealer(ring()).connect().await.expect_err("an untrusted certificate");
    assert!(matches!(refused, StorageError::Unavailable { .. }) && refused.to_string().contains("certificate"), "{refused:?}");
}

#[tokio::test]
async fn standalone_over_tls() {
    let server = RedisServer::start_tls();
    let ca = server.tls_ca().expect("a TLS server");
    // A plain URL with TLS switched on; `rediss://` alone does the same.
    let url = format!("redis://127.0.0.1:{}/", server.port());
    works_over_tls(settings(ca.clone(), |c| StorageConfig { redis_url: Some(url.clone().into()), ..c }), "master").await;
    assert_eq!(server.url(), format!("rediss://127.0.0.1:{}/", server.port()));
    let plain = RedisHAConfig::standalone(url);
    let plain = RedisBackend::builder_for(plain).sealer(ring()).connect().await.expect_err("a plain connection to a TLS port");
    assert!(matches!(plain, StorageError::Unavailable { .. }), "{plain:?}");
}

#[tokio::test]
async fn sentinel_over_tls() {
    let group = RedisSentinelGroup::start_tls();
    let ca = group.tls.as_ref().expect("TLS").ca();
    let hosts = list(&group.sentinel_hosts());
    works_over_tls(settings(ca, |c| StorageConfig { redis_sentinel_hosts: hosts, ..c }), "master").await;
}

#[tokio::test]
async fn cluster_over_tls() {
    let cluster = RedisCluster::start_tls();
    let ca = cluster.tls.as_ref().expect("TLS").ca();
    let nodes = list(&cluster.addresses());
    works_over_tls(settings(ca, |c| StorageConfig { redis_cluster_nodes: nodes, ..c }), "cluster (ok)").await;
}
