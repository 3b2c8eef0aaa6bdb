//! Reads Domino's MongoDB (domain.md §1) into [`DominoData`]: server-side filters and
//! projections only; a protecting collection that is missing fails the read unless named in
//! `mongo.optional_collections`, and every collection's document count is recorded. Owns the Mongo settings; never prints
//! the password (redacting `Debug`, scrubbed error text).

use crate::model::ObjectId;
use crate::model::domino::*;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, Credential};
use mongodb::{Client, Database};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// `mongo:` in config.yaml. `uri` (env `MONGODB_URI`) overrides host/port/replicaset; the
/// database comes from the URI when it names one.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct MongoSettings {
    pub host: String,
    pub port: u16,
    pub replicaset: Option<String>,
    pub db: String,
    #[serde(skip_serializing)]
    pub uri: Option<String>,
    pub username: Option<String>,
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// Server selection / connect timeout, so a down server fails the source quickly.
    pub timeout_secs: u64,
    /// Protecting collections this install may lack (`mongo.optional_collections`): absent,
    /// they read as empty instead of failing the source.
    pub optional_collections: Vec<String>,
    /// `--ca-cert` / `registry.ca_cert`, trusted when the URI turns TLS on (`tls=true`).
    pub ca_cert: Option<std::path::PathBuf>,
    /// `--insecure` / `registry.insecure`: with TLS, skip certificate verification.
    pub insecure: bool,
}

impl Default for MongoSettings {
    fn default() -> Self {
        MongoSettings {
            host: "mongodb-replicaset".into(),
            port: 27017,
            replicaset: Some("rs0".into()),
            db: "domino".into(),
            uri: None,
            username: None,
            password: None,
            timeout_secs: 10,
            optional_collections: Vec::new(),
            ca_cert: None,
            insecure: false,
        }
    }
}

impl std::fmt::Debug for MongoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("replicaset", &self.replicaset)
            .field("db", &self.db)
            .field("uri", &self.uri.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout_secs", &self.timeout_secs)
            .field("optional_collections", &self.optional_collections)
            .field("ca_cert", &self.ca_cert)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl MongoSettings {
    /// Where we connect, without credentials, for messages.
    pub fn target(&self) -> String {
        match &self.uri {
            Some(_) => "the server in MONGODB_URI".to_string(),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    pub fn scrub(&self, text: String) -> String {
        let mut text = text;
        for secret in [&self.password, &self.uri]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
        {
            text = text.replace(secret.as_str(), "<redacted>");
        }
        text
    }
}

/// Why the Mongo source failed. Every message names the setting to check, with any password
/// scrubbed out.
#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    /// The URI or settings could not be parsed, or the server could not be reached or
    /// authenticated.
    #[error("{0}")]
    Connect(String),
    /// A collection every protection depends on is missing (wrong `mongo.db`?).
    #[error("mongo: database '{db}' has no {collection} collection (check mongo.db)")]
    MissingCollection { db: String, collection: String },
    /// A collection that protects images is missing: reading it as empty would drop those
    /// protections, so the source fails unless the operator says the install has none.
    #[error(
        "mongo: database '{db}' has no {collection} collection, which gives {gives}; without it those protections would silently disappear, so the Mongo source fails (check mongo.db, or name {collection} in mongo.optional_collections / MONGODB_OPTIONAL_COLLECTIONS if this install really has none)"
    )]
    MissingProtectingCollection {
        db: String,
        collection: String,
        gives: &'static str,
    },
    /// A query failed after connecting.
    #[error("{0}")]
    Read(String),
}

/// Connects and reads everything; `Err` is a reason fit for the status bar.
pub async fn load(settings: &MongoSettings) -> Result<DominoData, MongoError> {
    let db = connect(settings).await?;
    read(&db, &settings.optional_collections).await.map_err(|e| match e {
        ReadError::Missing(collection) => MongoError::MissingCollection {
            db: db.name().to_string(),
            collection,
        },
        ReadError::MissingProtecting(collection, gives) => MongoError::MissingProtectingCollection {
            db: db.name().to_string(),
            collection: collection.to_string(),
            gives,
        },
        ReadError::Query(e) => {
            MongoError::Read(settings.scrub(format!("mongo: reading {} failed: {e}", settings.target())))
        }
        ReadError::Invalid(why) => MongoError::Read(settings.scrub(format!("mongo: {why}"))),
    })
}

pub async fn connect(s: &MongoSettings) -> Result<Database, MongoError> {
    let fail = |what: &str, e: mongodb::error::Error| {
        MongoError::Connect(s.scrub(format!(
            "mongo: {what} {} failed (check mongo.host/mongo.port/mongo.uri or MONGODB_URI): {e}",
            s.target()
        )))
    };
    let (mut opts, db) = match &s.uri {
        Some(uri) => {
            let opts = ClientOptions::parse(uri)
                .await
                .map_err(|e| fail("parsing the URI for", e))?;
            let db = opts.default_database.clone().unwrap_or_else(|| s.db.clone());
            (opts, db)
        }
        None => {
            let mut uri = format!("mongodb://{}:{}/", s.host, s.port);
            if let Some(rs) = &s.replicaset {
                uri.push_str(&format!("?replicaSet={rs}"));
            }
            (
                ClientOptions::parse(&uri)
                    .await
                    .map_err(|e| fail("parsing settings for", e))?,
                s.db.clone(),
            )
        }
    };
    // A username alone (the default `admin`) cannot authenticate: keep the URI's credentials
    // (or none) unless a password is known.
    if let (Some(user), Some(_)) = (&s.username, &s.password) {
        opts.credential = Some(
            Credential::builder()
                .username(user.clone())
                .password(s.password.clone())
                .build(),
        );
    }
    apply_tls(&mut opts, s);
    opts.server_selection_timeout = Some(Duration::from_secs(s.timeout_secs));
    opts.connect_timeout = Some(Duration::from_secs(s.timeout_secs));
    opts.app_name = Some("registry-cleaner".into());
    let client = Client::with_options(opts).map_err(|e| fail("configuring a client for", e))?;
    let db = client.database(&db);
    db.run_command(doc! { "ping": 1 })
        .await
        .map_err(|e| fail("connecting to", e))?;
    Ok(db)
}

/// The registry's trust settings for a TLS connection: a CA the URI does not name already
/// (`tlsCAFile` wins, being more specific), and `--insecure`. TLS itself stays the URI's choice
/// (`tls=true`): turning it on for a plain-text server would only break the connection.
fn apply_tls(opts: &mut ClientOptions, s: &MongoSettings) {
    if let Some(mongodb::options::Tls::Enabled(tls)) = &mut opts.tls {
        if tls.ca_file_path.is_none() {
            tls.ca_file_path = s.ca_cert.clone();
        }
        if s.insecure {
            tls.allow_invalid_certificates = Some(true);
        }
    }
}

type R<T> = Result<T, mongodb::error::Error>;

enum ReadError {
    Missing(String),
    /// A collection of `PROTECTING_COLLECTIONS` (name, what it gives) that is absent and not
    /// named optional.
    MissingProtecting(&'static str, &'static str),
    Query(mongodb::error::Error),
    /// Documents the rules cannot read without guessing (which field, which value).
    Invalid(String),
}

impl From<mongodb::error::Error> for ReadError {
    fn from(e: mongodb::error::Error) -> ReadError {
        ReadError::Query(e)
    }
}

async fn read(db: &Database, optional: &[String]) -> Result<DominoData, ReadError> {
    let names: HashSet<String> = db
        .list_collection_names()
        .await
        .map_err(ReadError::Query)?
        .into_iter()
        .collect();
    if !names.contains(CORE_COLLECTION) {
        return Err(ReadError::Missing(CORE_COLLECTION.into()));
    }
    // Checked before any query: an absent collection reads as empty, which for these is
    // "nothing uses this image".
    for (name, gives) in PROTECTING_COLLECTIONS {
        if !names.contains(*name) && !optional.iter().any(|o| o == name) {
            return Err(ReadError::MissingProtecting(name, gives));
        }
    }
    let db = &Reader {
        db,
        counts: Default::default(),
    };
    let run = async || -> Result<DominoData, ReadError> {
        let environments = environments(db).await?;
        let failed = failed_builds(db).await?;
        let mut live_workspaces = workspaces(db).await?;
        let mut all_runs = runs(db).await?;
        let (cluster_runs, cluster_envs) = cluster_runs(db).await?;
        all_runs.extend(cluster_runs);
        live_workspaces.extend(cluster_envs);
        Ok(DominoData {
            revisions: revisions(db).await?,
            models: models(db).await?,
            versions: versions(db, &failed).await?,
            users: users(db).await?,
            usage: Usage {
                runs: all_runs,
                workspaces: live_workspaces,
                active_model_versions: active_versions(db).await?,
                defaults: defaults(db, &names).await?,
            },
            environments,
            collections: Vec::new(),
        })
    };
    let mut data = run().await?;
    let counts = db.counts.lock().unwrap_or_else(|e| e.into_inner());
    data.collections = std::iter::once(CORE_COLLECTION)
        .chain(PROTECTING_COLLECTIONS.iter().map(|(n, _)| *n))
        .chain(OPTIONAL_COLLECTIONS.iter().copied())
        .map(|name| CollectionRead {
            name: name.to_string(),
            documents: counts.get(name).copied().unwrap_or(0),
            present: names.contains(name),
        })
        .collect();
    Ok(data)
}

/// The database plus how many documents each collection gave, for the report.
struct Reader<'a> {
    db: &'a Database,
    counts: std::sync::Mutex<HashMap<&'static str, u64>>,
}

impl Reader<'_> {
    fn add(&self, coll: &'static str, n: u64) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(coll)
            .or_default() += n;
    }
}

impl std::ops::Deref for Reader<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        self.db
    }
}

/// A counted query: its documents are what `coll` gave.
async fn find(db: &Reader<'_>, coll: &'static str, filter: Document, projection: Document) -> R<Vec<Document>> {
    let docs = find_uncounted(db, coll, filter, projection).await?;
    db.add(coll, docs.len() as u64);
    Ok(docs)
}

/// A second look at documents already counted (the runs recomputation).
async fn find_uncounted(db: &Database, coll: &str, filter: Document, projection: Document) -> R<Vec<Document>> {
    db.collection::<Document>(coll)
        .find(filter)
        .projection(projection)
        .await?
        .try_collect()
        .await
}

async fn environments(db: &Reader<'_>) -> R<Vec<Environment>> {
    let docs = find(
        db,
        "environments_v2",
        doc! {},
        doc! { "name": 1, "isArchived": 1, "activeRevisionId": 1, "ownerId": 1, "visibility": 1 },
    )
    .await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            Some(Environment {
                id: oid(d, "_id")?,
                name: string(d, "name").unwrap_or_default(),
                archived: d.get_bool("isArchived").unwrap_or(false),
                active_revision: oid(d, "activeRevisionId"),
                owner: oid(d, "ownerId"),
                private: string(d, "visibility").as_deref() == Some("Private"),
            })
        })
        .collect())
}

async fn revisions(db: &Reader<'_>) -> R<Vec<EnvRevision>> {
    let proj = doc! { "environmentId": 1, "metadata.dockerImageName": 1, "metadata.isBuilt": 1, "metadata.authorId": 1, "clonedEnvironmentRevisionId": 1 };
    let docs = find(db, "environment_revisions", doc! {}, proj).await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            Some(EnvRevision {
                id: oid(d, "_id")?,
                environment: oid(d, "environmentId")?,
                tag: string(d, "metadata.dockerImageName.tag"),
                repository: string(d, "metadata.dockerImageName.repository"),
                // Missing counts as built, as Domino's own queries (`$ne: false`) do.
                built: path(d, "metadata.isBuilt").and_then(Bson::as_bool) != Some(false),
                author: oid(d, "metadata.authorId"),
                cloned_from: oid(d, "clonedEnvironmentRevisionId"),
            })
        })
        .collect())
}

async fn models(db: &Reader<'_>) -> R<Vec<Model>> {
    let proj =
        doc! { "name": 1, "isArchived": 1, "environmentId": 1, "metadata.createdBy": 1, "collaboratorSettings": 1 };
    let docs = find(db, "models", doc! {}, proj).await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            let owner = d
                .get_array("collaboratorSettings")
                .ok()
                .and_then(|a| {
                    a.iter()
                        .filter_map(Bson::as_document)
                        .find(|c| c.get_str("role").ok() == Some("Owner"))
                })
                .and_then(|c| oid(c, "collaboratorId"))
                .or_else(|| oid(d, "metadata.createdBy"));
            Some(Model {
                id: oid(d, "_id")?,
                name: string(d, "name").unwrap_or_default(),
                archived: d.get_bool("isArchived").unwrap_or(false),
                environment: oid(d, "environmentId"),
                owner,
            })
        })
        .collect())
}

async fn failed_builds(db: &Reader<'_>) -> R<HashSet<ObjectId>> {
    let docs = find(db, "builds", doc! { "status": "Failed" }, doc! { "_id": 1 }).await?;
    Ok(docs.iter().filter_map(|d| oid(d, "_id")).collect())
}

/// Slugs of builds whose build document is not `Failed` (a missing build document is kept).
async fn versions(db: &Reader<'_>, failed: &HashSet<ObjectId>) -> R<Vec<ModelVersion>> {
    let proj = doc! { "modelId": 1, "environmentRevisionId": 1, "metadata.builds.slug.image": 1, "metadata.builds.buildId": 1 };
    let docs = find(db, "model_versions", doc! {}, proj).await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            let builds: Vec<&Document> = path(d, "metadata.builds")
                .and_then(Bson::as_array)
                .map(|a| a.iter().filter_map(Bson::as_document).collect())
                .unwrap_or_default();
            let ok = |b: &&Document| !build_ids(b).iter().any(|id| failed.contains(id));
            let good: Vec<&Document> = builds.into_iter().filter(ok).collect();
            Some(ModelVersion {
                id: oid(d, "_id")?,
                model: oid(d, "modelId.value").or_else(|| oid(d, "modelId"))?,
                revision: oid(d, "environmentRevisionId"),
                slugs: good
                    .iter()
                    .filter_map(|b| string(b, "slug.image.tag"))
                    .filter(|s| !s.is_empty())
                    .collect(),
                repository: good.iter().rev().find_map(|b| string(b, "slug.image.repository")),
            })
        })
        .collect())
}

fn build_ids(build: &Document) -> Vec<ObjectId> {
    match build.get("buildId") {
        Some(Bson::Array(a)) => a
            .iter()
            .filter_map(|b| b.as_document().and_then(|d| oid(d, "value")).or_else(|| bson_oid(b)))
            .collect(),
        Some(Bson::Document(d)) => oid(d, "value").into_iter().collect(),
        Some(b) => bson_oid(b).into_iter().collect(),
        None => vec![],
    }
}

async fn users(db: &Reader<'_>) -> R<Vec<User>> {
    let docs = find(db, "users", doc! {}, doc! { "fullName": 1, "loginId.id": 1 }).await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            Some(User {
                id: oid(d, "_id")?,
                name: string(d, "fullName").unwrap_or_default(),
                login: string(d, "loginId.id").unwrap_or_default(),
            })
        })
        .collect())
}

/// Run statuses that mean a run is over. Anything else (or no `completed`) is in flight.
pub const FINAL_RUN_STATUSES: [&str; 9] = [
    "Succeeded",
    "Failed",
    "Error",
    "Stopped",
    "Completed",
    "Finished",
    "Cancelled",
    "Canceled",
    "Killed",
];

/// Runs grouped per (environment, revision) on the server. Age statistics leave out workspace
/// and app sessions (`RunReusableVolumeSpecification`); runs still in flight — sessions
/// included — are counted apart, because they use their revision's image now.
///
/// Fail closed on what the server's `$max` cannot be trusted with: the in-flight query runs
/// *first* (a run only leaves the in-flight set by completing, and then the second query sees
/// its `completed`); a group whose dates are not all BSON dates (ISO strings compare as text,
/// mixed types by type order) is recomputed here from its documents; a group whose ids are not
/// ObjectIds stops the read, naming them, since nobody can tell which image it used.
async fn runs(db: &Reader<'_>) -> Result<Vec<RunUsage>, ReadError> {
    let finals: Vec<Bson> = FINAL_RUN_STATUSES.iter().map(|s| Bson::String((*s).into())).collect();
    let group = |extra: Document| {
        let mut g = doc! {
            "_id": { "e": "$environmentId", "r": "$environmentRevisionId" },
            "count": { "$sum": 1 },
        };
        g.extend(extra);
        doc! { "$group": g }
    };
    let aggregate = async |pipeline: Vec<Document>| -> R<Vec<Document>> {
        db.collection::<Document>("runs")
            .aggregate(pipeline)
            .await?
            .try_collect()
            .await
    };
    // Not completed: no `completed` date, or a status that is not final (a run with a date but
    // no status at all is taken as finished: old records carry no status).
    let in_flight = aggregate(vec![
        doc! { "$match": {
            "environmentId": { "$exists": true },
            "environmentRevisionId": { "$exists": true },
            "$or": [
                { "completed": { "$exists": false } },
                { "completed": Bson::Null },
                { "status": { "$exists": true, "$nin": finals } },
            ],
        } },
        // Sessions in flight are counted apart: they are the only session runs read at all,
        // so the report's run count is the age groups plus these.
        group(doc! { "sessions": { "$sum": { "$cond": [
            { "$eq": ["$volumeSpecification._t", "RunReusableVolumeSpecification"] }, 1, 0,
        ] } } }),
    ])
    .await?;
    let sessions_out = doc! { "$ne": "RunReusableVolumeSpecification" };
    let finished = aggregate(vec![
        doc! { "$match": {
            "environmentId": { "$exists": true },
            "environmentRevisionId": { "$exists": true },
            "volumeSpecification._t": sessions_out.clone(),
        } },
        group(doc! {
            "completed": { "$max": "$completed" }, "completed_min": { "$min": "$completed" },
            "started": { "$max": "$started" }, "started_min": { "$min": "$started" },
        }),
    ])
    .await?;
    let count = |d: &Document| {
        path(d, "count")
            .and_then(|c| c.as_i64().or_else(|| c.as_i32().map(i64::from)))
            .unwrap_or(1)
            .max(0) as u64
    };
    let ids = |d: &Document| -> Result<(ObjectId, ObjectId), ReadError> {
        match (oid(d, "_id.e"), oid(d, "_id.r")) {
            (Some(e), Some(r)) => Ok((e, r)),
            _ => Err(ReadError::Invalid(format!(
                "runs: {} run(s) have environmentId {} and environmentRevisionId {}, which are not both ObjectIds; which image they use cannot be told, so no run-based decision is made (fix those documents)",
                count(d),
                path(d, "_id.e").map_or("(missing)".into(), Bson::to_string),
                path(d, "_id.r").map_or("(missing)".into(), Bson::to_string),
            ))),
        }
    };
    let mut out: Vec<RunUsage> = Vec::with_capacity(finished.len());
    // Groups whose server-side maxima cannot be trusted, by position in `out`.
    let mut recompute: Vec<usize> = Vec::new();
    for d in &finished {
        let (environment, revision) = ids(d)?;
        let trusted = |max: &str, min: &str| {
            matches!(
                (path(d, max), path(d, min)),
                (None | Some(Bson::Null), None | Some(Bson::Null)) | (Some(Bson::DateTime(_)), Some(Bson::DateTime(_)))
            )
        };
        if !trusted("completed", "completed_min") || !trusted("started", "started_min") {
            recompute.push(out.len());
        }
        let completed = path(d, "completed").and_then(time);
        let started = path(d, "started").and_then(time);
        out.push(RunUsage {
            environment,
            revision,
            last_used: completed.max(started),
            count: count(d),
            in_flight: 0,
        });
    }
    for chunk in recompute.chunks(200) {
        let pairs: Vec<Document> = chunk
            .iter()
            .map(|&i| doc! { "environmentId": bson_id(out[i].environment), "environmentRevisionId": bson_id(out[i].revision) })
            .collect();
        let hex_pairs: Vec<Document> = chunk
            .iter()
            .map(|&i| {
                doc! { "environmentId": out[i].environment.to_string(), "environmentRevisionId": out[i].revision.to_string() }
            })
            .collect();
        let filter = doc! {
            "$or": pairs.into_iter().chain(hex_pairs).collect::<Vec<_>>(),
            "volumeSpecification._t": sessions_out.clone(),
        };
        let docs = find_uncounted(
            db,
            "runs",
            filter,
            doc! { "environmentId": 1, "environmentRevisionId": 1, "completed": 1, "started": 1 },
        )
        .await?;
        // Latest time per group; a date present but unreadable makes the group's time unknown
        // (which protects: an unknown time cannot prove the run is old).
        let mut latest: HashMap<(ObjectId, ObjectId), Option<Option<i64>>> = HashMap::new();
        for doc in &docs {
            let (Some(e), Some(r)) = (oid(doc, "environmentId"), oid(doc, "environmentRevisionId")) else {
                continue;
            };
            let mut t: Option<Option<i64>> = Some(None);
            for field in ["completed", "started"] {
                match path(doc, field) {
                    None | Some(Bson::Null) => {}
                    Some(b) => match (time(b), t) {
                        (Some(x), Some(prev)) => t = Some(prev.max(Some(x))),
                        _ => t = None,
                    },
                }
            }
            let e = latest.entry((e, r)).or_insert(Some(None));
            *e = match (*e, t) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        for &i in chunk {
            out[i].last_used = latest
                .get(&(out[i].environment, out[i].revision))
                .copied()
                .flatten()
                .flatten();
        }
    }
    // Join by (environment, revision) through an index: a scan per in-flight group would be
    // quadratic on large installs.
    let mut at: HashMap<(ObjectId, ObjectId), usize> = out
        .iter()
        .enumerate()
        .map(|(i, u)| ((u.environment, u.revision), i))
        .collect();
    let counted = |d: &Document, field: &str| {
        path(d, field)
            .and_then(|c| c.as_i64().or_else(|| c.as_i32().map(i64::from)))
            .unwrap_or(0)
            .max(0) as u64
    };
    db.add(
        "runs",
        out.iter().map(|u| u.count).sum::<u64>() + in_flight.iter().map(|d| counted(d, "sessions")).sum::<u64>(),
    );
    for d in &in_flight {
        let (environment, revision) = ids(d)?;
        let n = count(d);
        match at.get(&(environment, revision)) {
            Some(&i) => out[i].in_flight += n,
            None => {
                at.insert((environment, revision), out.len());
                out.push(RunUsage {
                    environment,
                    revision,
                    last_used: None,
                    count: 0,
                    in_flight: n,
                });
            }
        }
    }
    Ok(out)
}

/// Where a run names its compute cluster's (Spark/Ray/Dask) environment: the fields
/// `workspace_session` documents carry (domain.md §1.1), read on runs too.
const CLUSTER_ENV_FIELDS: [&str; 3] = [
    "computeClusterEnvironmentId",
    "computeClusterProps.computeEnvironmentId",
    "config.computeClusterProps.computeEnvironmentId",
];

/// The compute-cluster environments of runs (jobs), as workspace sessions' are read. With a
/// `computeClusterEnvironmentRevisionId`, a run group on that revision under the same rules
/// as the run's own (window, in flight now); without one, the cluster environment is used at
/// environment level (its active revision, whatever the window): which revision the cluster
/// ran is not recorded.
async fn cluster_runs(db: &Reader<'_>) -> Result<(Vec<RunUsage>, Vec<WorkspaceUsage>), ReadError> {
    let any: Vec<Document> = CLUSTER_ENV_FIELDS
        .iter()
        .map(|f| doc! { *f: { "$exists": true, "$ne": Bson::Null } })
        .collect();
    let mut proj =
        doc! { "_id": 1, "computeClusterEnvironmentRevisionId": 1, "completed": 1, "started": 1, "status": 1 };
    for f in CLUSTER_ENV_FIELDS {
        proj.insert(f, 1);
    }
    let docs = find_uncounted(db, "runs", doc! { "$or": any }, proj).await?;
    // Per (environment, revision): finished runs, their latest time (None once any is
    // unreadable or missing: an unknown time cannot prove the run is old), runs in flight.
    type Group = (u64, Option<i64>, bool, u64);
    let mut groups: std::collections::BTreeMap<(ObjectId, ObjectId), Group> = Default::default();
    let mut env_level: std::collections::BTreeMap<ObjectId, u64> = Default::default();
    for d in &docs {
        // A field that is set but is no ObjectId cannot tell which image: fail the read.
        for f in CLUSTER_ENV_FIELDS
            .iter()
            .chain(["computeClusterEnvironmentRevisionId"].iter())
        {
            if let Some(b) = path(d, f).filter(|b| !matches!(b, Bson::Null))
                && bson_oid(b).is_none()
            {
                return Err(ReadError::Invalid(format!(
                    "runs: document {} has {f} {b}, which is not an ObjectId; which compute-cluster image it uses cannot be told (fix that document)",
                    path(d, "_id").map_or("(no _id)".into(), Bson::to_string)
                )));
            }
        }
        let Some(env) = CLUSTER_ENV_FIELDS.iter().find_map(|f| oid(d, f)) else {
            continue;
        };
        let Some(rev) = oid(d, "computeClusterEnvironmentRevisionId") else {
            *env_level.entry(env).or_default() += 1;
            continue;
        };
        let finished = !matches!(path(d, "completed"), None | Some(Bson::Null))
            && string(d, "status").is_none_or(|st| FINAL_RUN_STATUSES.contains(&st.as_str()));
        let g = groups.entry((env, rev)).or_insert((0, None, false, 0));
        if !finished {
            g.3 += 1;
            continue;
        }
        g.0 += 1;
        for field in ["completed", "started"] {
            match path(d, field).map(time) {
                None => {}
                Some(Some(x)) => g.1 = Some(g.1.map_or(x, |p| p.max(x))),
                Some(None) if matches!(path(d, field), Some(Bson::Null)) => {}
                Some(None) => g.2 = true,
            }
        }
    }
    let runs = groups
        .into_iter()
        .map(
            |((environment, revision), (count, latest, unknown, in_flight))| RunUsage {
                environment,
                revision,
                last_used: if unknown { None } else { latest },
                count,
                in_flight,
            },
        )
        .collect();
    let envs = env_level
        .into_iter()
        .map(|(env, n)| WorkspaceUsage {
            name: format!("compute cluster of {n} run(s)"),
            compute_environment: Some(env),
            ..WorkspaceUsage::default()
        })
        .collect();
    Ok((runs, envs))
}

async fn workspaces(db: &Reader<'_>) -> R<Vec<WorkspaceUsage>> {
    let proj = doc! { "name": 1, "stateUpdatedAt": 1, "configTemplate.environmentId": 1, "configTemplate.environmentRevisionSpec": 1, "configTemplate.computeClusterProps.computeEnvironmentId": 1 };
    let docs = find(db, "workspace", doc! { "state": { "$ne": "Deleted" } }, proj).await?;
    let mut out: Vec<WorkspaceUsage> = docs
        .iter()
        .map(|d| WorkspaceUsage {
            id: oid(d, "_id"),
            name: string(d, "name").unwrap_or_default(),
            environment: oid(d, "configTemplate.environmentId"),
            revision_spec: string(d, "configTemplate.environmentRevisionSpec").and_then(|s| RevisionSpec::parse(&s)),
            compute_environment: oid(d, "configTemplate.computeClusterProps.computeEnvironmentId"),
            last_change: path(d, "stateUpdatedAt").and_then(time),
            ..WorkspaceUsage::default()
        })
        .collect();
    // Sessions find their workspace through an index: 100k workspaces × sessions must not be
    // a nested scan.
    let by_id: std::collections::HashMap<ObjectId, usize> = out
        .iter()
        .enumerate()
        .filter_map(|(i, w)| w.id.map(|id| (id, i)))
        .collect();
    let proj = doc! { "workspaceId": 1, "environmentId": 1, "config.environmentId": 1, "computeClusterEnvironmentId": 1, "config.computeClusterProps.computeEnvironmentId": 1, "environmentRevisionId": 1, "computeClusterEnvironmentRevisionId": 1 };
    // Stream every session and keep those of live workspaces: a `$in` over 100k workspace ids
    // makes the server compare each session against the whole list.
    let mut cursor = db
        .collection::<Document>("workspace_session")
        .find(doc! {})
        .projection(proj)
        .await?;
    while let Some(s) = cursor.try_next().await? {
        db.add("workspace_session", 1);
        let Some(ws) = oid(&s, "workspaceId")
            .and_then(|id| by_id.get(&id))
            .map(|i| &mut out[*i])
        else {
            continue;
        };
        for f in [
            "environmentId",
            "config.environmentId",
            "computeClusterEnvironmentId",
            "config.computeClusterProps.computeEnvironmentId",
        ] {
            ws.session_environments.extend(oid(&s, f));
        }
        for f in ["environmentRevisionId", "computeClusterEnvironmentRevisionId"] {
            ws.session_revisions.extend(oid(&s, f));
        }
    }
    Ok(out)
}

/// A version is active when its most recent qualifying saga is `StartModelVersion`.
async fn active_versions(db: &Reader<'_>) -> R<Vec<ActiveModelVersion>> {
    let filter = doc! {
        "sagaName": { "$in": ["ModelVersionDeployment", "StartModelVersion", "StopModelVersion"] },
        "state": { "$in": ["slug-build-succeeded", "succeeded"] },
        "isCompleted": true,
    };
    let docs = find(
        db,
        "sagas",
        filter,
        doc! { "parameters.modelVersionId": 1, "sagaName": 1, "started": 1 },
    )
    .await?;
    let mut latest: HashMap<ObjectId, (i64, bool)> = HashMap::new();
    for d in &docs {
        let Some(v) = oid(d, "parameters.modelVersionId") else {
            continue;
        };
        let at = path(d, "started").and_then(time).unwrap_or(i64::MIN);
        let start = d.get_str("sagaName").ok() == Some("StartModelVersion");
        let e = latest.entry(v).or_insert((at, start));
        if at >= e.0 {
            *e = (at, start);
        }
    }
    let mut out: Vec<_> = latest
        .into_iter()
        .filter(|(_, (_, start))| *start)
        .map(|(version, _)| ActiveModelVersion { version })
        .collect();
    out.sort_by_key(|a| a.version);
    Ok(out)
}

async fn defaults(db: &Reader<'_>, names: &HashSet<String>) -> R<Vec<DefaultUsage>> {
    let mut out = Vec::new();
    let projects = find(
        db,
        "projects",
        doc! { "overrideV2EnvironmentId": { "$exists": true, "$ne": null }, "isArchived": { "$ne": true } },
        doc! { "name": 1, "overrideV2EnvironmentId": 1, "defaultEnvironmentRevisionSpec": 1 },
    )
    .await?;
    for d in &projects {
        let spec = string(d, "defaultEnvironmentRevisionSpec").and_then(|s| RevisionSpec::parse(&s));
        push_default(
            &mut out,
            DefaultKind::Project,
            d,
            "name",
            "overrideV2EnvironmentId",
            spec,
        );
    }
    // A scheduled job's compute cluster (Spark/Ray/Dask) environment, where a workspace
    // keeps it (`computeClusterProps.computeEnvironmentId`), protects like its own.
    let cluster = "jobDataPlain.computeClusterProps.computeEnvironmentId";
    let jobs = find(
        db,
        "scheduler_jobs",
        doc! { "$or": [
            { "jobDataPlain.overrideEnvironmentId": { "$exists": true, "$ne": null } },
            { cluster: { "$exists": true, "$ne": null } },
        ] },
        doc! { "jobName": 1, "jobDataPlain.overrideEnvironmentId": 1, cluster: 1 },
    )
    .await?;
    for d in &jobs {
        for env in ["jobDataPlain.overrideEnvironmentId", cluster] {
            push_default(&mut out, DefaultKind::SchedulerJob, d, "jobName", env, None);
        }
    }
    if names.contains("organizations") {
        for d in &find(
            db,
            "organizations",
            doc! { "defaultV2EnvironmentId": { "$exists": true, "$ne": null } },
            doc! { "name": 1, "defaultV2EnvironmentId": 1 },
        )
        .await?
        {
            push_default(
                &mut out,
                DefaultKind::Organization,
                d,
                "name",
                "defaultV2EnvironmentId",
                None,
            );
        }
    }
    if names.contains("app_versions") {
        let mut filter = doc! { "environmentId": { "$exists": true, "$ne": null } };
        // Without model_products we cannot tell archived apps apart: count every version.
        if names.contains("model_products") {
            let live = find(
                db,
                "model_products",
                doc! { "isArchived": { "$ne": true } },
                doc! { "_id": 1 },
            )
            .await?;
            let ids: Vec<Bson> = live.iter().filter_map(|d| d.get("_id").cloned()).collect();
            filter.insert("appId", doc! { "$in": ids });
        }
        for d in &find(
            db,
            "app_versions",
            filter,
            doc! { "appId": 1, "versionNumber": 1, "environmentId": 1 },
        )
        .await?
        {
            push_default(
                &mut out,
                DefaultKind::AppVersion,
                d,
                "versionNumber",
                "environmentId",
                None,
            );
        }
    }
    if names.contains("userPreferences") {
        for d in &find(
            db,
            "userPreferences",
            doc! { "defaultEnvironmentId": { "$exists": true, "$ne": null } },
            doc! { "userId": 1, "defaultEnvironmentId": 1 },
        )
        .await?
        {
            push_default(
                &mut out,
                DefaultKind::UserPreference,
                d,
                "userId",
                "defaultEnvironmentId",
                None,
            );
        }
    }
    Ok(out)
}

fn push_default(
    out: &mut Vec<DefaultUsage>,
    kind: DefaultKind,
    d: &Document,
    name: &str,
    env: &str,
    spec: Option<RevisionSpec>,
) {
    let (Some(id), Some(environment)) = (oid(d, "_id"), oid(d, env)) else {
        return;
    };
    let name = path(d, name).map(|b| match b {
        Bson::String(s) => s.clone(),
        other => other.to_string().trim_matches('"').to_string(),
    });
    out.push(DefaultUsage {
        kind,
        id,
        name: name.unwrap_or_default(),
        environment,
        revision_spec: spec,
    });
}

/// A dotted path into nested documents.
fn path<'a>(d: &'a Document, dotted: &str) -> Option<&'a Bson> {
    let mut parts = dotted.split('.');
    let mut cur = d.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_document()?.get(p)?;
    }
    Some(cur)
}

fn string(d: &Document, dotted: &str) -> Option<String> {
    path(d, dotted).and_then(Bson::as_str).map(str::to_string)
}

fn oid(d: &Document, dotted: &str) -> Option<ObjectId> {
    path(d, dotted).and_then(bson_oid)
}

fn bson_id(id: ObjectId) -> Bson {
    Bson::ObjectId(mongodb::bson::oid::ObjectId::from_bytes(id.bytes()))
}

/// ObjectIds appear as BSON ObjectIds or, in some documents, as 24-hex strings.
fn bson_oid(b: &Bson) -> Option<ObjectId> {
    match b {
        Bson::ObjectId(o) => Some(ObjectId::from_bytes(o.bytes())),
        Bson::String(s) => ObjectId::parse(s).ok(),
        _ => None,
    }
}

/// Unix seconds from a BSON date, epoch milliseconds or an RFC 3339 string; else `None`.
fn time(b: &Bson) -> Option<i64> {
    match b {
        Bson::DateTime(t) => Some(t.timestamp_millis().div_euclid(1000)),
        Bson::Int64(ms) => Some(ms.div_euclid(1000)),
        Bson::String(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_from_dates_millis_and_iso_strings() {
        // domain.md §10.3/§10.4: `Z` and `+00:00` parse; empty, invalid and null do not.
        let t = 1_705_314_600;
        assert_eq!(time(&Bson::String("2024-01-15T10:30:00Z".into())), Some(t));
        assert_eq!(time(&Bson::String("2024-01-15T10:30:00+00:00".into())), Some(t));
        assert_eq!(
            time(&Bson::DateTime(mongodb::bson::DateTime::from_millis(t * 1000))),
            Some(t)
        );
        assert_eq!(time(&Bson::Int64(t * 1000)), Some(t));
        for bad in [Bson::String(String::new()), Bson::String("invalid".into()), Bson::Null] {
            assert_eq!(time(&bad), None);
        }
    }

    /// issue 11.14: with TLS on in the URI, `--ca-cert` and `--insecure` reach the Mongo
    /// client; a URI's own `tlsCAFile` wins; without TLS nothing turns it on.
    #[tokio::test]
    async fn the_ca_certificate_and_insecure_apply_to_a_tls_connection() {
        use mongodb::options::Tls;
        let s = MongoSettings {
            ca_cert: Some("/etc/internal-ca.pem".into()),
            insecure: true,
            ..MongoSettings::default()
        };
        let tls_of = async |uri: &str, s: &MongoSettings| {
            let mut opts = ClientOptions::parse(uri).await.unwrap();
            apply_tls(&mut opts, s);
            opts.tls
        };
        let Some(Tls::Enabled(t)) = tls_of("mongodb://h/?tls=true", &s).await else {
            panic!("TLS stays on")
        };
        assert_eq!(
            t.ca_file_path.as_deref(),
            Some(std::path::Path::new("/etc/internal-ca.pem"))
        );
        assert_eq!(t.allow_invalid_certificates, Some(true));
        let Some(Tls::Enabled(t)) = tls_of("mongodb://h/?tls=true&tlsCAFile=/own.pem", &s).await else {
            panic!("TLS stays on")
        };
        assert_eq!(t.ca_file_path.as_deref(), Some(std::path::Path::new("/own.pem")));
        let plain = MongoSettings::default();
        let Some(Tls::Enabled(t)) = tls_of("mongodb://h/?tls=true", &plain).await else {
            panic!("TLS stays on")
        };
        assert_eq!((t.ca_file_path, t.allow_invalid_certificates), (None, None));
        assert!(
            !matches!(tls_of("mongodb://h/", &s).await, Some(Tls::Enabled(_))),
            "no TLS without tls=true"
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let s = MongoSettings {
            uri: Some("mongodb://u:hunter2@h/db".into()),
            password: Some("hunter2".into()),
            ..MongoSettings::default()
        };
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert_eq!(s.scrub("bad auth hunter2".into()), "bad auth <redacted>");
    }
}
