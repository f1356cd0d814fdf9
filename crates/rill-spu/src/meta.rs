//! Topic metadata in the local file store: one small text file per topic
//! under `<data>/__rill_meta/topics/`, replaced atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::topic::{TopicConfig, TopicSpec};
use crate::SpuError;

const FORMAT_LINE: &str = "rill-topic 1";

#[derive(Debug, Clone)]
pub(crate) struct MetaStore {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpuError + '_ {
    move |source| SpuError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl MetaStore {
    pub fn open(data_dir: &Path) -> Result<Self, SpuError> {
        let dir = data_dir.join("__rill_meta").join("topics");
        // Not plain create_dir_all: see create_dir_all_durable.
        rill_storage::create_dir_all_durable(&dir).map_err(io_err(&dir))?;
        Ok(Self { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.topic"))
    }

    /// Every stored topic with its id.
    pub fn load_all(&self) -> Result<Vec<(TopicSpec, uuid::Uuid)>, SpuError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let path = entry.map_err(io_err(&self.dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("topic") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(io_err(&path))?;
            let parsed = decode(&text).map_err(|reason| SpuError::Metadata {
                path: path.clone(),
                reason,
            })?;
            out.push(parsed);
        }
        Ok(out)
    }

    pub fn save(&self, spec: &TopicSpec, id: uuid::Uuid) -> Result<(), SpuError> {
        let path = self.path(&spec.name);
        let tmp = self.dir.join(format!("{}.topic.tmp", spec.name));
        let mut file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(encode(spec, id).as_bytes())
            .map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        self.sync_dir()
    }

    pub fn remove(&self, name: &str) -> Result<(), SpuError> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
            _ => {}
        }
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), SpuError> {
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))
    }
}

fn encode(spec: &TopicSpec, id: uuid::Uuid) -> String {
    let mut s = format!(
        "{FORMAT_LINE}\nname {}\nid {}\npartitions {}\nreplication_factor {}\n",
        spec.name,
        id.as_hyphenated(),
        spec.partitions,
        spec.replication_factor
    );
    for (k, v) in spec.config.pairs() {
        s.push_str(&format!("config {k}={v}\n"));
    }
    s
}

fn decode(text: &str) -> Result<(TopicSpec, uuid::Uuid), String> {
    let mut lines = text.lines();
    if lines.next() != Some(FORMAT_LINE) {
        return Err("missing format line".into());
    }
    let mut field = |key: &str| -> Result<String, String> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(key))
            .and_then(|l| l.strip_prefix(' '))
            .map(str::to_owned)
            .ok_or_else(|| format!("missing {key}"))
    };
    let name = field("name")?;
    let id = uuid::Uuid::parse_str(&field("id")?).map_err(|e| e.to_string())?;
    let partitions = field("partitions")?.parse().map_err(|_| "bad partitions")?;
    let replication_factor = field("replication_factor")?
        .parse()
        .map_err(|_| "bad replication_factor")?;
    let mut config = TopicConfig::default();
    for line in lines {
        let (k, v) = line
            .strip_prefix("config ")
            .and_then(|kv| kv.split_once('='))
            .ok_or_else(|| format!("bad line {line:?}"))?;
        config.set(k, v)?;
    }
    Ok((
        TopicSpec {
            name,
            partitions,
            replication_factor,
            config,
        },
        id,
    ))
}
