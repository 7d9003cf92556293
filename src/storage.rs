//! Where photo files live: the local filesystem under the data directory by default, or
//! S3-compatible object storage (`storage_url = "s3://bucket/prefix"`, credentials from the
//! usual `AWS_*` environment) for deployments with several API instances. Everything goes
//! through the `object_store` crate, so the code is the same for both.

use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The directory behind a local store: files are moved in, not copied.
    local_root: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Storage")
    }
}

/// A byte stream of an object (or of a range of it).
pub type ByteStream =
    futures::stream::BoxStream<'static, Result<bytes::Bytes, object_store::Error>>;

impl Storage {
    pub fn from_config(data_dir: &std::path::Path, url: Option<&str>) -> anyhow::Result<Storage> {
        let local_root = url.is_none().then(|| data_dir.to_path_buf());
        let store: Arc<dyn ObjectStore> = match url {
            None => {
                std::fs::create_dir_all(data_dir)?;
                Arc::new(
                    LocalFileSystem::new_with_prefix(data_dir)
                        .context("opening the data directory as storage")?,
                )
            }
            Some(u) if u.starts_with("s3://") => {
                let s3: Arc<dyn ObjectStore> = Arc::new(
                    object_store::aws::AmazonS3Builder::from_env()
                        .with_url(u)
                        .build()
                        .context("configuring S3 storage")?,
                );
                // `s3://bucket/prefix`: keys live under the prefix.
                let prefix = u
                    .trim_start_matches("s3://")
                    .split_once('/')
                    .map(|(_, p)| p.trim_matches('/'))
                    .unwrap_or("");
                if prefix.is_empty() {
                    s3
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
                }
            }
            Some(u) => anyhow::bail!("storage_url must be s3://bucket[/prefix] (got {u:?})"),
        };
        Ok(Storage { store, local_root })
    }

    pub async fn exists(&self, key: &str) -> bool {
        self.store.head(&ObjectPath::from(key)).await.is_ok()
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Moves a finished local file into the store: renamed into place on a local store,
    /// streamed in 5 MB parts (one in flight) to object storage — never the whole file in
    /// memory.
    pub async fn put_file(&self, key: &str, file: &std::path::Path) -> anyhow::Result<()> {
        if let Some(root) = &self.local_root {
            let dest = root.join(key);
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::rename(file, &dest).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&ObjectPath::from(key)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * 1024 * 1024);
        let mut f = tokio::fs::File::open(file).await?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(1).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(())
    }

    pub async fn get_all(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        Ok(self
            .store
            .get(&ObjectPath::from(key))
            .await?
            .bytes()
            .await?
            .to_vec())
    }

    pub async fn size(&self, key: &str) -> Option<u64> {
        self.store
            .head(&ObjectPath::from(key))
            .await
            .ok()
            .map(|m| m.size)
    }

    /// The object's bytes `start..start + len` as a stream.
    pub async fn stream(&self, key: &str, start: u64, len: u64) -> anyhow::Result<ByteStream> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(start..start + len)),
            ..Default::default()
        };
        let result = self.store.get_opts(&ObjectPath::from(key), options).await?;
        Ok(result.into_stream().boxed())
    }

    /// The first bytes of an object (for type sniffing).
    pub async fn head_bytes(&self, key: &str, n: u64) -> Option<Vec<u8>> {
        let size = self.size(key).await?;
        let options = GetOptions {
            range: Some(GetRange::Bounded(0..n.min(size))),
            ..Default::default()
        };
        let r = self
            .store
            .get_opts(&ObjectPath::from(key), options)
            .await
            .ok()?;
        r.bytes().await.ok().map(|b| b.to_vec())
    }
}
