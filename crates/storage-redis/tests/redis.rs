//! What only Redis can show: every key a backend wrote, read back raw.

use std::sync::Arc;
use storage_crypto::{EncryptionKey, KeyRing};
use storage_redis::RedisBackend;
use storage_testkit::server::{fresh_namespace, shared_redis_url};

/// Every key of `namespace` and everything in it, as bytes.
async fn dump(url: &str, namespace: &str) -> Vec<u8> {
    let client = redis::Client::open(url).expect("client");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect");
    let mut dump = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{namespace}:*"))
            .arg("COUNT")
            .arg(1_000)
            .query_async(&mut con)
            .await
            .expect("scan");
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut con).await.expect("type");
            let command = match kind.as_str() {
                "hash" => redis::cmd("HGETALL").arg(&key).clone(),
                "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).arg("WITHSCORES").clone(),
                "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
                "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
                "string" => redis::cmd("GET").arg(&key).clone(),
                other => panic!("a key of an unexpected type: {other}"),
            };
            let values: redis::Value = command.query_async(&mut con).await.expect("read a key");
            dump.extend(&key);
            dump.extend(format!("{values:?}").into_bytes());
            collect_bytes(&values, &mut dump);
        }
        if next == 0 {
            return dump;
        }
        cursor = next;
    }
}

fn collect_bytes(value: &redis::Value, out: &mut Vec<u8>) {
    match value {
        redis::Value::BulkString(bytes) => out.extend(bytes),
        redis::Value::SimpleString(text) => out.extend(text.as_bytes()),
        redis::Value::Array(items) | redis::Value::Set(items) => items.iter().for_each(|item| collect_bytes(item, out)),
        redis::Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            collect_bytes(k, out);
            collect_bytes(v, out);
        }),
        _ => {}
    }
}

#[tokio::test]
async fn no_secret_is_in_any_key_in_clear() {
    let (url, namespace) = (shared_redis_url(), fresh_namespace());
    let ring = KeyRing::single(EncryptionKey::generate().expect("key")).expect("ring");
    let backend = RedisBackend::builder(url.clone()).namespace(namespace.clone()).sealer(Arc::new(ring)).connect().await.expect("connect");
    let secrets = storage_testkit::at_rest::plant_secrets(&backend).await;
    storage_testkit::at_rest::assert_no_secret_in(&secrets, &dump(&url, &namespace).await, "every key of the namespace");
}
