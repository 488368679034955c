//! The S3 backend of the record store (clinic mode, docs/deployment.md): objects
//! `sha256/<64 hex>` in one bucket, reached over HTTP(S) with requests signed by `rusty-s3`
//! (sans-I/O, AWS SigV4 presigned URLs) and sent by `ureq` (blocking, rustls). Tested against a
//! three-node Garage cluster.
//!
//! Nothing relies on conditional writes (Garage ignores `If-None-Match`): an object's name is
//! the SHA-256 of its bytes, so writing it twice, or two devices writing it at once, leaves the
//! same bytes. Every read recomputes the digest and refuses other bytes. Records larger than
//! [`PART_SIZE`] are uploaded in parts taken as slices of the one sealed buffer (no copy) and
//! read into one buffer sized from `Content-Length` (bounded by [`MAX_BLOB`]).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Locator, MAX_BLOB, RecordStore, StoreError};

/// Parts of a multipart upload (the last may be smaller). S3 needs at least 5 MiB per part.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// How long a presigned request stays valid.
const SIGN_FOR: Duration = Duration::from_secs(300);
/// How long one request may take before the store counts as unavailable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the bucket is (`device.json` → `store.s3`). The secret key is in the keystore
/// (`keys/s3.secret`), never here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `http(s)://host:port` of the S3 API, one per node (or one load balancer): a request that
    /// cannot reach a node, or that a node cannot serve (5xx), is tried on the next.
    pub endpoints: Vec<String>,
    /// The bucket.
    pub bucket: String,
    /// The region the server signs for (Garage: its `s3_region`, default `garage`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
}

fn default_region() -> String {
    "garage".into()
}

/// A bucket of sealed records, reachable through one or more endpoints.
pub struct S3Store {
    nodes: Vec<Node>,
    creds: Credentials,
    agent: ureq::Agent,
    name: String,
}

/// One endpoint and the bucket as seen through it.
struct Node {
    bucket: Bucket,
    endpoint: String,
}

impl Node {
    /// This node did not answer (connection refused, timeout, TLS): the store is unavailable.
    fn unavailable(&self, e: &dyn std::fmt::Display) -> StoreError {
        StoreError::Unavailable { endpoint: self.endpoint.clone(), message: e.to_string() }
    }
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("bucket", &self.name).field("endpoints", &self.nodes.len()).finish()
    }
}

fn key_of(locator: &Locator) -> String {
    format!("sha256/{}", locator.hex())
}

impl S3Store {
    /// The bucket of `cfg`, signing with `secret` (checked by the first request, not here).
    pub fn open(cfg: &S3Config, secret: &Zeroizing<String>) -> Result<Self, StoreError> {
        if cfg.endpoints.is_empty() {
            return Err(StoreError::S3Config { endpoint: String::new(), why: "no endpoint given".into() });
        }
        let mut nodes = Vec::with_capacity(cfg.endpoints.len());
        for endpoint in &cfg.endpoints {
            let bad = |why: String| StoreError::S3Config { endpoint: endpoint.clone(), why };
            let url: url::Url = endpoint.parse().map_err(|e| bad(format!("not a URL: {e}")))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad("the endpoint must not hold credentials".into()));
            }
            let bucket = Bucket::new(url, UrlStyle::Path, cfg.bucket.clone(), cfg.region.clone()).map_err(|e| bad(e.to_string()))?;
            nodes.push(Node { bucket, endpoint: endpoint.clone() });
        }
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(REQUEST_TIMEOUT)).http_status_as_error(false).build().into();
        Ok(S3Store { nodes, creds: Credentials::new(cfg.access_key_id.clone(), secret.as_str()), agent, name: cfg.bucket.clone() })
    }

    /// Checks that the bucket is there and the key may read it: a GET of an object that is not
    /// there must answer "no such key". A missing bucket, refused credentials or no endpoint
    /// answering is the error `device join` reports before it writes anything.
    pub fn check(&self) -> Result<(), StoreError> {
        let key = key_of(&Locator::of(b"medcard: is the bucket there?"));
        self.each(|node| {
            let url = node.bucket.get_object(Some(&self.creds), &key).sign(SIGN_FOR);
            let resp = self.agent.get(url.as_str()).call().map_err(|e| node.unavailable(&e))?;
            match self.missing_or_refused(node, "bucket check", &key, resp) {
                Ok(true) => Ok(()),
                Ok(false) => Err(StoreError::S3 {
                    endpoint: node.endpoint.clone(),
                    bucket: self.name.clone(),
                    operation: "bucket check",
                    status: 200,
                    message: format!("{key} exists, but nothing ever writes it: is this MedCard's bucket?"),
                }),
                Err(e) => Err(e),
            }
        })
    }

    /// For a GET answer: `Ok(true)`: 404 "no such key" (or a 404 without a readable code);
    /// `Ok(false)`: 200; `Err`: any other refusal, a missing bucket included.
    fn missing_or_refused(
        &self,
        node: &Node,
        operation: &'static str,
        key: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<bool, StoreError> {
        match resp.status().as_u16() {
            200 => Ok(false),
            404 => {
                let body = resp.body_mut().with_config().limit(16 * 1024).read_to_string().unwrap_or_default();
                match between(&body, "<Code>", "</Code>") {
                    Some("NoSuchBucket") => Err(StoreError::S3 {
                        endpoint: node.endpoint.clone(),
                        bucket: self.name.clone(),
                        operation,
                        status: 404,
                        message: format!(
                            "NoSuchBucket {}: the bucket {} does not exist (create it, or check --s3-bucket)",
                            between(&body, "<Message>", "</Message>").unwrap_or_default(),
                            self.name
                        ),
                    }),
                    _ => Ok(true),
                }
            }
            _ => Err(self.refused(node, operation, key, resp)),
        }
    }

    /// `s3://bucket (endpoint, ...)`, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("s3://{} ({})", self.name, self.nodes.iter().map(|n| n.endpoint.as_str()).collect::<Vec<_>>().join(", "))
    }

    /// Runs `op` on each endpoint in turn until one gives an answer that is not "unavailable".
    fn each<T>(&self, op: impl Fn(&Node) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut failures = Vec::new();
        for node in &self.nodes {
            match op(node) {
                Err(StoreError::Unavailable { endpoint, message }) => failures.push(format!("{endpoint}: {message}")),
                other => return other,
            }
        }
        Err(StoreError::Unavailable { endpoint: format!("s3://{}", self.name), message: failures.join("; ") })
    }

    fn where_(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("s3://{}/{key}", self.name))
    }

    /// A refusal by the server: 5xx is the store being unavailable (a node down, no quorum),
    /// anything else a configuration problem (credentials, bucket) named by the server's code.
    fn refused(&self, node: &Node, operation: &'static str, key: &str, mut resp: ureq::http::Response<ureq::Body>) -> StoreError {
        let status = resp.status().as_u16();
        let body = resp.body_mut().with_config().limit(16 * 1024).read_to_string().unwrap_or_default();
        let code = between(&body, "<Code>", "</Code>").unwrap_or_default();
        let message = between(&body, "<Message>", "</Message>").unwrap_or_default();
        let text = format!("HTTP {status} {code} {message}").trim().to_owned();
        if status >= 500 {
            StoreError::Unavailable { endpoint: node.endpoint.clone(), message: format!("{operation} {key}: {text}") }
        } else {
            StoreError::S3 { endpoint: node.endpoint.clone(), bucket: self.name.clone(), operation, status, message: text }
        }
    }

    fn put_multipart(&self, node: &Node, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let create = node.bucket.create_multipart_upload(Some(&self.creds), key).sign(SIGN_FOR);
        let mut resp = self.agent.post(create.as_str()).send(&[][..]).map_err(|e| node.unavailable(&e))?;
        if resp.status().as_u16() != 200 {
            return Err(self.refused(node, "start upload of", key, resp));
        }
        let body = resp.body_mut().with_config().limit(64 * 1024).read_to_string().map_err(|e| node.unavailable(&e))?;
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(&body)
            .map_err(|e| node.unavailable(&format!("unreadable reply to a multipart upload: {e}")))?;
        let upload_id = created.upload_id().to_owned();
        let result = (|| {
            let mut etags = Vec::new();
            for (i, part) in bytes.chunks(PART_SIZE).enumerate() {
                let n = u16::try_from(i + 1).map_err(|_| StoreError::TooLarge {
                    locator: Locator::of(bytes),
                    path: self.where_(key),
                    len: bytes.len() as u64,
                    limit: MAX_BLOB,
                })?;
                let url = node.bucket.upload_part(Some(&self.creds), key, n, &upload_id).sign(SIGN_FOR);
                let resp = self.agent.put(url.as_str()).send(part).map_err(|e| node.unavailable(&e))?;
                if resp.status().as_u16() != 200 {
                    return Err(self.refused(node, "upload part of", key, resp));
                }
                let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                etags.push(etag);
            }
            let complete = node.bucket.complete_multipart_upload(Some(&self.creds), key, &upload_id, etags.iter().map(String::as_str));
            let url = complete.sign(SIGN_FOR);
            let resp = self.agent.post(url.as_str()).send(complete.body().as_bytes()).map_err(|e| node.unavailable(&e))?;
            if resp.status().as_u16() != 200 {
                return Err(self.refused(node, "complete upload of", key, resp));
            }
            Ok(())
        })();
        if result.is_err() {
            // Best effort: a failed upload leaves no object (parts are invisible until
            // completed); aborting frees the parts now instead of at the server's cleanup.
            let abort = node.bucket.abort_multipart_upload(Some(&self.creds), key, &upload_id).sign(SIGN_FOR);
            let _ = self.agent.delete(abort.as_str()).call();
        }
        result
    }
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s.get(start..)?.find(close)? + start;
    s.get(start..end)
}

impl RecordStore for S3Store {
    fn put(&self, bytes: &[u8]) -> Result<Locator, StoreError> {
        let locator = Locator::of(bytes);
        let key = key_of(&locator);
        self.each(|node| {
            if bytes.len() > PART_SIZE {
                return self.put_multipart(node, &key, bytes);
            }
            let url = node.bucket.put_object(Some(&self.creds), &key).sign(SIGN_FOR);
            let resp = self.agent.put(url.as_str()).send(bytes).map_err(|e| node.unavailable(&e))?;
            if resp.status().as_u16() != 200 {
                return Err(self.refused(node, "store", &key, resp));
            }
            Ok(())
        })?;
        Ok(locator)
    }

    fn get(&self, locator: &Locator) -> Result<Vec<u8>, StoreError> {
        let key = key_of(locator);
        let out = self.each(|node| {
            let url = node.bucket.get_object(Some(&self.creds), &key).sign(SIGN_FOR);
            let resp = self.agent.get(url.as_str()).call().map_err(|e| node.unavailable(&e))?;
            // A missing bucket is a configuration error, not a missing record.
            let mut resp = match resp.status().as_u16() {
                200 => resp,
                _ => {
                    return Err(match self.missing_or_refused(node, "read", &key, resp) {
                        Ok(_) => StoreError::NotFound { locator: *locator, path: self.where_(&key) },
                        Err(e) => e,
                    });
                }
            };
            let declared = resp.body().content_length();
            if let Some(len) = declared.filter(|l| *l > MAX_BLOB) {
                return Err(StoreError::TooLarge { locator: *locator, path: self.where_(&key), len, limit: MAX_BLOB });
            }
            // One buffer, sized from the declared length; never more than MAX_BLOB + 1 bytes read.
            let mut out = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
            let reader = resp.body_mut().with_config().limit(MAX_BLOB + 1).reader();
            reader.take(MAX_BLOB + 1).read_to_end(&mut out).map_err(|e| node.unavailable(&format!("reading {key}: {e}")))?;
            Ok(out)
        })?;
        if out.len() as u64 > MAX_BLOB {
            return Err(StoreError::TooLarge { locator: *locator, path: self.where_(&key), len: out.len() as u64, limit: MAX_BLOB });
        }
        let got: [u8; 32] = Sha256::digest(&out).into();
        if &got != locator.digest() {
            return Err(StoreError::DigestMismatch { locator: *locator, path: self.where_(&key), got: hex::encode(got) });
        }
        Ok(out)
    }

    fn contains(&self, locator: &Locator) -> Result<bool, StoreError> {
        let key = key_of(locator);
        self.each(|node| {
            let url = node.bucket.head_object(Some(&self.creds), &key).sign(SIGN_FOR);
            let resp = self.agent.head(url.as_str()).call().map_err(|e| node.unavailable(&e))?;
            match resp.status().as_u16() {
                200 => Ok(true),
                404 => Ok(false),
                _ => Err(self.refused(node, "look up", &key, resp)),
            }
        })
    }

    fn delete(&self, locator: &Locator) -> Result<(), StoreError> {
        let key = key_of(locator);
        self.each(|node| {
            let url = node.bucket.delete_object(Some(&self.creds), &key).sign(SIGN_FOR);
            let resp = self.agent.delete(url.as_str()).call().map_err(|e| node.unavailable(&e))?;
            match resp.status().as_u16() {
                200 | 204 | 404 => Ok(()),
                _ => Err(self.refused(node, "delete", &key, resp)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_the_locator_digest_and_server_errors_are_read() {
        let l = Locator::of(b"x");
        assert_eq!(key_of(&l), format!("sha256/{}", l.hex()));
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>Bucket not found: x</Message></Error>";
        assert_eq!(between(body, "<Code>", "</Code>"), Some("NoSuchBucket"));
        assert_eq!(between(body, "<Nope>", "</Nope>"), None);
        assert_eq!(between("<Code>unterminated", "<Code>", "</Code>"), None);
    }

    #[test]
    fn an_endpoint_with_credentials_or_not_a_url_is_refused() {
        let secret = Zeroizing::new("s".to_owned());
        let cfg = |endpoint: &str| S3Config {
            endpoints: vec![endpoint.into()],
            bucket: "b".into(),
            region: "garage".into(),
            access_key_id: "k".into(),
        };
        assert!(matches!(S3Store::open(&cfg("http://u:p@h:3900"), &secret), Err(StoreError::S3Config { .. })));
        assert!(matches!(S3Store::open(&cfg("not a url"), &secret), Err(StoreError::S3Config { .. })));
        assert!(matches!(S3Store::open(&cfg("ftp://h"), &secret), Err(StoreError::S3Config { .. })));
        assert!(S3Store::open(&cfg("http://127.0.0.1:3900"), &secret).is_ok());
    }

    #[test]
    fn an_unreachable_endpoint_is_unavailable_not_missing() {
        let secret = Zeroizing::new("s".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(1);
        let cfg = S3Config {
            endpoints: vec![format!("http://127.0.0.1:{port}")],
            bucket: "b".into(),
            region: "garage".into(),
            access_key_id: "k".into(),
        };
        let Ok(s) = S3Store::open(&cfg, &secret) else { return };
        let e = s.get(&Locator::of(b"x"));
        assert!(matches!(e, Err(StoreError::Unavailable { .. })), "{e:?}");
    }
}
